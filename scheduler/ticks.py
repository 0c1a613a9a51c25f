"""Cron ticks with catch-up: every slot since the last one emitted, within the grace.

At each fire (every ``daily_calls.tick_every_min`` minutes, and once at start) the
leader emits every slot after the last one recorded for the tick, up to now's slot,
oldest first, each through the intake (``infra.ticks.submit_tick``: once per slot,
whichever replica emits it). Slots older than the grace window are skipped with one
warning line: their users were due too long ago to be called, and the next tick marks
them ``missed``. A scheduler that never ran starts at the current slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from infra.calendar import slots_to_emit
from infra.intake import Intake
from infra.logs import get_logger
from infra.ticks import TickSpec, submit_tick
from scheduler.metrics import SLOTS_EMITTED, SLOTS_SKIPPED

_log = get_logger(__name__)


class SlotBook(Protocol):
    """The last slot each tick emitted (``infra.store.slots.SqlSchedulerSlots``)."""

    def last_slot(self, name: str) -> datetime | None:
        """The last slot emitted, or None."""
        ...

    def record_slot(self, name: str, slot: datetime) -> None:
        """Remember a slot as emitted."""
        ...


def emit_due_slots(
    spec: TickSpec,
    *,
    intake: Intake,
    slots: SlotBook,
    now: datetime,
    every: timedelta,
    grace: timedelta,
) -> int:
    """Emit the tick's slots due at ``now``; return how many were emitted.

    Raises:
        TransientError: The job store could not be reached (the next fire retries).
    """
    due, skipped = slots_to_emit(slots.last_slot(spec.name), now, every=every, grace=grace)
    if skipped:
        SLOTS_SKIPPED.labels(spec.name).inc(skipped)
        _log.warning(
            "scheduler.slots_skipped",
            tick=spec.name,
            skipped=skipped,
            grace_min=grace.total_seconds() / 60,
        )
    for slot in due:
        admission = submit_tick(intake, spec, slot)
        slots.record_slot(spec.name, slot)
        SLOTS_EMITTED.labels(spec.name).inc()
        _log.info(
            "scheduler.tick",
            tick=spec.name,
            slot=slot.isoformat(),
            job_id=admission.job_id,
            outcome=admission.outcome,
        )
    return len(due)
