"""The scheduler's ticks: what each emits, on which cron, and how a tick becomes a job.

A tick is a job like any other: ``submit_tick`` records it through the intake under the
external id ``<tick>:<slot>``, so a second scheduler replica (or a retried fire) for the
same slot is a ``duplicate`` and publishes nothing. Its first contract's step selects
what is due at the slot and fans out. The scheduler fires the ticks; the API reads
their crons for ``GET /api/queue/status`` and submits a manual daily-calls tick for
``POST /api/queue/trigger``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

from contracts import CallbacksDueTick, DailyCallsTick
from infra.intake import Admission, Intake, Submission
from infra.settings import DailyCallsSettings

SOURCE = "scheduler"
"""The inbox source of ticks."""


@dataclass(frozen=True)
class TickSpec:
    """One cron tick of the scheduler.

    Attributes:
        name: The tick's name (``daily-calls``), in logs, metrics and the status API.
        contract: The tick contract it emits.
        kind: The job kind (the pipeline the contract starts).
    """

    name: str
    contract: type[DailyCallsTick] | type[CallbacksDueTick]
    kind: str


DAILY_CALLS = TickSpec("daily-calls", DailyCallsTick, "daily_calls")
CALLBACKS_DUE = TickSpec("callbacks-due", CallbacksDueTick, "callbacks")
TICKS = (DAILY_CALLS, CALLBACKS_DUE)
"""Every cron tick, in the order the scheduler adds them."""


def cron_of(settings: DailyCallsSettings) -> str:
    """The ticks' crontab expression (UTC): every ``tick_every_min`` minutes."""
    every = settings.tick_every_min
    return "* * * * *" if every == 1 else f"*/{every} * * * *"


def trigger_of(settings: DailyCallsSettings) -> CronTrigger:
    """The APScheduler trigger of the ticks, in UTC."""
    return CronTrigger.from_crontab(cron_of(settings), timezone=UTC)


def next_fire(settings: DailyCallsSettings, now: datetime) -> datetime | None:
    """When the ticks fire next after ``now``."""
    fire: datetime | None = trigger_of(settings).get_next_fire_time(None, now)
    return fire


def slot_label(slot: datetime) -> str:
    """A slot as an id fragment: ``20261204T101500Z``."""
    return slot.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def submit_tick(
    intake: Intake,
    spec: TickSpec,
    slot: datetime,
    *,
    manual: bool = False,
    external_id: str | None = None,
) -> Admission:
    """Record and dispatch the tick of ``spec`` for ``slot`` (once per slot).

    Args:
        intake: The intake the tick goes through.
        spec: Which tick.
        slot: The slot: what is due at or before it is selected.
        manual: Emitted on demand (``POST /api/queue/trigger``).
        external_id: Overrides the dedupe id ``<tick>:<slot>`` (a manual trigger
            dedupes on its rate-limit window instead).

    Raises:
        TransientError: The inbox could not be reached.
    """
    tick_id = f"{spec.name}:{slot_label(slot)}"
    contract = spec.contract(
        job_id=uuid.uuid4().hex, correlation_id=tick_id, slot=slot, manual=manual
    )
    return intake.submit(
        Submission(
            source=SOURCE,
            tenant_id=None,
            kind=spec.kind,
            contract=contract,
            external_id=external_id or tick_id,
            body=contract.model_dump_json().encode(),
        )
    )
