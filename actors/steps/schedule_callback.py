"""Step ``schedule_callback``: record a due callback for the scheduler to emit later.

Consumes ``ScheduleCallbackCommand``; emits nothing (the end of the general-call
pipeline). The callback is a due row in the database, not a broker delay: scheduler
ticks pick it up when it is due.

Idempotent: the callback book keeps at most one callback per conversation and returns
False for a replay, which changes nothing.
"""

from __future__ import annotations

from actors.ports import CallbackBook
from contracts import Contract, ScheduleCallbackCommand


def run(command: ScheduleCallbackCommand, *, callbacks: CallbackBook) -> list[Contract]:
    """Record the callback (a no-op when the conversation already has one).

    Args:
        command: What to schedule.
        callbacks: The due-callback book.

    Returns:
        ``[]``.

    Raises:
        TransientError: The store could not be reached.
    """
    # The boolean only tells a first delivery from a replay; both are successes.
    callbacks.schedule_callback(
        tenant_id=command.tenant_id,
        conversation_id=command.conversation_id,
        due_at=command.callback.due_at,
        reason=command.callback.reason,
        phone=command.caller_number,
        agent_id=command.agent_id,
    )
    return []
