"""Steps ``select_due_calls`` and ``select_due_callbacks``: a tick's fan-out.

Consume ``DailyCallsTick`` / ``CallbacksDueTick``; emit one ``PlaceUserCallJobData`` /
``PlaceCallbackJobData`` per call the dial plan queued under the tick's job.

The dial plan does the selection in one transaction — users whose ``next_call_at`` is
at or before the slot, retries due by then, callbacks due by then — and returns every
call still queued under the job, so a redelivered tick publishes what an earlier
delivery queued but did not get to publish, and queues nothing twice. Each placement
is correlated by its call id, which every log line of the call then carries.
"""

from __future__ import annotations

from typing import TypeVar

from actors.ports import DialPlan
from contracts import (
    CallbacksDueTick,
    Contract,
    DailyCallsTick,
    PlaceCallbackJobData,
    PlaceUserCallJobData,
)
from contracts.errors import PermanentError
from contracts.values import OutboundCall

T = TypeVar("T")


def run(tick: DailyCallsTick, *, plan: DialPlan) -> list[Contract]:
    """Queue the daily calls due at the tick's slot and return their placements.

    Raises:
        TransientError: The store could not be reached.
    """
    return [
        PlaceUserCallJobData(
            **_common(tick, call),
            user_id=_required(call.user_id, call, "user_id"),
            local_date=_required(call.local_date, call, "local_date"),
        )
        for call in plan.claim_daily_calls(tick.slot, tick.job_id)
    ]


def run_callbacks(tick: CallbacksDueTick, *, plan: DialPlan) -> list[Contract]:
    """Queue the callbacks due at the tick's slot and return their placements.

    Raises:
        TransientError: The store could not be reached.
    """
    return [
        PlaceCallbackJobData(
            **_common(tick, call),
            conversation_id=_required(call.conversation_id, call, "conversation_id"),
        )
        for call in plan.claim_callbacks(tick.slot, tick.job_id)
    ]


def _common(tick: DailyCallsTick | CallbacksDueTick, call: OutboundCall) -> dict[str, object]:
    return {
        "job_id": tick.job_id,
        "correlation_id": call.id,
        "tenant_id": call.tenant_id,
        "call_id": call.id,
        "phone": call.phone,
        "attempt": call.attempt,
        "agent_id": call.agent_id,
        "caller_id": call.caller_id,
    }


def _required(value: T | None, call: OutboundCall, name: str) -> T:
    if value is None:
        raise PermanentError(f"{call.purpose} call {call.id} has no {name}")
    return value
