from __future__ import annotations

from actors.steps import persist_call
from contracts import ScheduleCallbackCommand
from contracts.values import CallLogEntry
from tests.builders import CONVERSATION_ID, make_analysis, make_callback, make_indexed
from tests.fakes import InMemoryCallStore


def test_the_call_log_is_saved_with_the_analysis_and_call_details() -> None:
    calls = InMemoryCallStore()
    event = make_indexed()

    persist_call.run(event, calls=calls)

    assert calls.call_logs == {
        (event.tenant_id, CONVERSATION_ID): CallLogEntry(
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            job_id=event.job_id,
            analysis=event.analysis,
            duration_secs=event.duration_secs,
            call_status=event.call_status,
            started_at=event.started_at,
        )
    }


def test_a_call_without_a_callback_request_emits_nothing() -> None:
    assert persist_call.run(make_indexed(), calls=InMemoryCallStore()) == []


def test_a_call_with_a_callback_request_emits_a_schedule_callback_command() -> None:
    callback = make_callback()
    event = make_indexed(analysis=make_analysis(callback=callback))

    emitted = persist_call.run(event, calls=InMemoryCallStore())

    assert emitted == [
        ScheduleCallbackCommand(
            job_id=event.job_id,
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            callback=callback,
        )
    ]


def test_a_replay_upserts_the_same_single_row_and_emits_the_same_command() -> None:
    calls = InMemoryCallStore()
    event = make_indexed(analysis=make_analysis(callback=make_callback()))

    first = persist_call.run(event, calls=calls)
    second = persist_call.run(event, calls=calls)

    assert first == second
    assert first[0].idempotency_key == second[0].idempotency_key
    assert list(calls.call_logs) == [(event.tenant_id, CONVERSATION_ID)]
