"""Step ``persist_call``: store the call log, then ask for a callback when needed.

Consumes ``CallIndexed``; emits ``ScheduleCallbackCommand`` when the analysis found a
callback request, else nothing.

Idempotent: the call log is upserted by conversation id, and the emitted command is
keyed by the conversation, so a replay writes the same row and the callback step
ignores the duplicate command.
"""

from __future__ import annotations

from actors.ports import CallRecords
from contracts import CallIndexed, Contract, ScheduleCallbackCommand
from contracts.values import CallLogEntry


def run(event: CallIndexed, *, calls: CallRecords) -> list[Contract]:
    """Upsert the call log; emit a callback command if the caller asked for one.

    Args:
        event: The indexed call.
        calls: Persisted call logs.

    Returns:
        ``[ScheduleCallbackCommand]`` when ``event.analysis.callback`` is set, else ``[]``.

    Raises:
        TransientError: The store could not be reached.
    """
    calls.save_call_log(
        CallLogEntry(
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            job_id=event.job_id,
            analysis=event.analysis,
            duration_secs=event.duration_secs,
            call_status=event.call_status,
            started_at=event.started_at,
        )
    )
    callback = event.analysis.callback
    if callback is None:
        return []
    return [
        ScheduleCallbackCommand(
            job_id=event.job_id,
            correlation_id=event.correlation_id,
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            caller_number=event.caller_number,
            callback=callback,
        )
    ]
