"""Steps ``place_user_call`` and ``place_callback_call``: one outbound call, placed once.

Consume ``PlaceUserCallJobData`` / ``PlaceCallbackJobData``; emit nothing (the status
webhooks of the telephony provider take the call from there).

Placing a call cannot be undone, and the provider takes no idempotency key, so the call
book brackets the request:

1. ``start_placing`` moves the call from ``queued`` to ``placing``; a call in any other
   state was placed, cancelled or reviewed already, and the delivery is a no-op. A call
   found in ``placing`` belonged to a delivery that died mid-request: it becomes
   ``unknown`` for review rather than being placed a second time.
2. The provider answers with its call id (``placed``), or the request is known not to
   have reached it (``TransientError``: back to ``queued``, and Dramatiq retries), or
   the provider refused it (``PermanentError``: ``failed``, dead-lettered), or nobody
   knows (``OutcomeUnknown``: ``unknown``, for review, not retried).
"""

from __future__ import annotations

from actors.ports import CallBook, Telephony
from contracts import Contract, PlaceCall
from contracts.errors import OutcomeUnknown, PermanentError, TransientError


def run(command: PlaceCall, *, telephony: Telephony, book: CallBook) -> list[Contract]:
    """Place the call unless this delivery is a replay.

    Returns:
        ``[]``.

    Raises:
        TransientError: The provider or the store could not be reached; retry.
        PermanentError: The provider refused the call.
    """
    if not book.start_placing(command.call_id):
        return []
    try:
        provider_call_id = telephony.place(command)
    except OutcomeUnknown as error:
        book.fail(command.call_id, str(error), unknown=True)
        return []
    except TransientError as error:
        book.requeue(command.call_id, str(error))
        raise
    except PermanentError as error:
        book.fail(command.call_id, str(error))
        raise
    book.placed(command.call_id, provider_call_id)
    return []
