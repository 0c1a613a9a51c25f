from __future__ import annotations

from datetime import UTC, datetime

from actors.steps import schedule_callback
from contracts import ScheduleCallbackCommand
from tests.builders import AGENT_ID, CONVERSATION_ID, JOB_ID, TENANT_ID, make_callback
from tests.fakes import InMemoryCallStore, ScheduledCallback


def _command(**callback_overrides: object) -> ScheduleCallbackCommand:
    return ScheduleCallbackCommand(
        job_id=JOB_ID,
        tenant_id=TENANT_ID,
        conversation_id=CONVERSATION_ID,
        agent_id=AGENT_ID,
        callback=make_callback(**callback_overrides),
    )


def test_a_callback_is_booked_as_scheduled_at_its_due_time() -> None:
    callbacks = InMemoryCallStore()
    command = _command()

    assert schedule_callback.run(command, callbacks=callbacks) == []

    assert callbacks.callbacks == {
        (TENANT_ID, CONVERSATION_ID): ScheduledCallback(
            tenant_id=TENANT_ID,
            conversation_id=CONVERSATION_ID,
            due_at=command.callback.due_at,
            reason=command.callback.reason,
            agent_id=AGENT_ID,
            status="scheduled",
        )
    }


def test_the_callback_keeps_the_callers_number_for_placing_it_later() -> None:
    callbacks = InMemoryCallStore()
    command = _command().model_copy(update={"caller_number": "+14155550123"})

    schedule_callback.run(command, callbacks=callbacks)

    booked = callbacks.callbacks[(TENANT_ID, CONVERSATION_ID)]
    assert (booked.phone, booked.agent_id) == ("+14155550123", AGENT_ID)


def test_a_replayed_command_is_a_no_op_that_keeps_the_first_callback() -> None:
    callbacks = InMemoryCallStore()
    first = _command()
    schedule_callback.run(first, callbacks=callbacks)

    later = _command(due_at=datetime(2026, 3, 9, 9, 0, tzinfo=UTC), reason="Changed mind.")
    assert schedule_callback.run(later, callbacks=callbacks) == []

    [booked] = callbacks.callbacks.values()
    assert (booked.due_at, booked.reason) == (first.callback.due_at, first.callback.reason)
