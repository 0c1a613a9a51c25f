"""Steps ``select_due_calls`` and ``select_due_callbacks``: one placement per queued call."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from actors.steps import select_due_calls
from contracts import CallbacksDueTick, DailyCallsTick, PlaceCallbackJobData, PlaceUserCallJobData
from contracts.errors import PermanentError
from contracts.values import OutboundCall
from tests.fakes import FixedDialPlan

SLOT = datetime(2026, 12, 4, 3, 35, tzinfo=UTC)


def _call(n: int, **fields: object) -> OutboundCall:
    values: dict[str, object] = {
        "id": f"call_{n}",
        "tenant_id": "tenant-acme",
        "purpose": "daily",
        "user_id": f"usr_{n}",
        "local_date": date(2026, 12, 4),
        "attempt": 1,
        "phone": f"+1415555010{n}",
        "status": "queued",
    }
    return OutboundCall.model_validate(values | fields)


def test_a_tick_fans_out_one_placement_per_queued_call() -> None:
    plan = FixedDialPlan(daily=[_call(1), _call(2, agent_id="agent_x", attempt=2)])
    tick = DailyCallsTick(job_id="job_tick", correlation_id="daily-calls:x", slot=SLOT)

    placements = select_due_calls.run(tick, plan=plan)

    assert plan.claims == [("daily", SLOT, "job_tick")]
    assert all(isinstance(p, PlaceUserCallJobData) for p in placements)
    assert [(p.call_id, p.user_id, p.attempt, p.agent_id) for p in placements] == [  # type: ignore[attr-defined]
        ("call_1", "usr_1", 1, None),
        ("call_2", "usr_2", 2, "agent_x"),
    ]
    # Each placement belongs to the tick's job, and its logs carry its call id.
    assert {p.job_id for p in placements} == {"job_tick"}
    assert [p.correlation_id for p in placements] == ["call_1", "call_2"]
    assert placements[0].idempotency_key == "user-call:tenant-acme:usr_1:2026-12-04:1"


def test_a_tick_with_nothing_due_publishes_nothing() -> None:
    tick = DailyCallsTick(job_id="job_tick", correlation_id="daily-calls:x", slot=SLOT)

    assert select_due_calls.run(tick, plan=FixedDialPlan()) == []


def test_a_callbacks_tick_places_each_due_callback() -> None:
    call = _call(1, purpose="callback", user_id=None, local_date=None, conversation_id="conv_9")
    tick = CallbacksDueTick(job_id="job_cb", correlation_id="callbacks-due:x", slot=SLOT)

    [placement] = select_due_calls.run_callbacks(tick, plan=FixedDialPlan(callbacks=[call]))

    assert isinstance(placement, PlaceCallbackJobData)
    assert placement.conversation_id == "conv_9"
    assert placement.idempotency_key == "callback-call:tenant-acme:conv_9:1"


def test_a_daily_call_without_its_user_is_a_permanent_error() -> None:
    tick = DailyCallsTick(job_id="job_tick", correlation_id="daily-calls:x", slot=SLOT)

    with pytest.raises(PermanentError, match="has no user_id"):
        select_due_calls.run(tick, plan=FixedDialPlan(daily=[_call(1, user_id=None)]))
