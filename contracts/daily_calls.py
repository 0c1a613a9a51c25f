"""Contracts of the outbound-call pipelines: daily calls and due callbacks.

Daily calls::

    DailyCallsTick ─select_due_calls─► PlaceUserCallJobData (one per call) ─place_user_call─► (end)

Due callbacks::

    CallbacksDueTick ─select_due_callbacks─► PlaceCallbackJobData (one per call)
        ─place_callback_call─► (end)

The scheduler emits one tick per slot (every five minutes by default); the slot is the
tick's idempotency key, so a second scheduler, or a replayed tick, changes nothing. The
tick's actor selects what is due in the database and fans out one placement per call.
A placement is keyed by its call row — (user, local date, attempt) for a daily call —
and the telephony provider's status webhooks update that row afterwards.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from contracts.base import Contract, Route
from contracts.fields import AwareDatetime, Count, Identifier, PhoneNumber


class _Tick(Contract):
    """A scheduler tick: everything due at or before ``slot``."""

    slot: AwareDatetime = Field(description="The tick's slot: what is due at or before it.")
    manual: bool = Field(default=False, description="Emitted by `POST /api/queue/trigger`.")

    def _key(self, kind: str) -> str:
        return f"{kind}:{self.slot.isoformat()}"


class DailyCallsTick(_Tick):
    """Command: place the daily calls due at the slot (and the retries due by then)."""

    route = Route(queue="daily_calls.tick", actor="select_due_calls")

    @property
    def idempotency_key(self) -> str:
        """One selection per slot."""
        return self._key("daily-calls-tick")


class CallbacksDueTick(_Tick):
    """Command: place the callbacks that fell due at or before the slot."""

    route = Route(queue="callbacks.tick", actor="select_due_callbacks")

    @property
    def idempotency_key(self) -> str:
        """One selection per slot."""
        return self._key("callbacks-due-tick")


class PlaceCall(Contract):
    """Command: place one outbound call recorded in the call book."""

    tenant_id: Identifier = Field(description="The tenant whose user or caller is called.")
    call_id: Identifier = Field(description="The call row this placement is for.")
    phone: PhoneNumber = Field(description="The number to call, E.164.")
    attempt: Count = Field(ge=1, description="1 for the first call, 2 for the first retry, …")
    agent_id: Identifier | None = Field(
        default=None, description="The voice agent to call with; unset uses the default."
    )
    caller_id: PhoneNumber | None = Field(
        default=None, description="The number to call from; unset uses the provider's."
    )


class PlaceUserCallJobData(PlaceCall):
    """Command: place a user's daily call (one per user, local date and attempt)."""

    route = Route(queue="daily_calls.place", actor="place_user_call")

    user_id: Identifier = Field(description="The user called.")
    local_date: date = Field(description="The user's local date the call belongs to.")

    @property
    def idempotency_key(self) -> str:
        """One placement per user, local date and attempt."""
        return f"user-call:{self.tenant_id}:{self.user_id}:{self.local_date}:{self.attempt}"


class PlaceCallbackJobData(PlaceCall):
    """Command: call back a caller who asked for it on a post-call webhook."""

    route = Route(queue="callbacks.place", actor="place_callback_call")

    conversation_id: Identifier = Field(description="The conversation that asked for it.")

    @property
    def idempotency_key(self) -> str:
        """One placement per callback and attempt."""
        return f"callback-call:{self.tenant_id}:{self.conversation_id}:{self.attempt}"
