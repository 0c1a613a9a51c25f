"""Values exchanged with ports (not messages): vectors, matches, conversation snapshots.

Like contracts, they never echo their input in a validation error: it may hold a
transcript.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.calls import CallAnalysis, TranscriptTurn
from contracts.fields import AwareDatetime


class VectorRecord(BaseModel):
    """A vector to upsert, under a deterministic id."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    id: str = Field(description="Deterministic id, e.g. `<conversation_id>#summary`.")
    values: list[float] = Field(description="The embedding.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Flat metadata.")


class VectorMatch(BaseModel):
    """A query result."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    id: str = Field(description="The vector id.")
    score: float = Field(description="Similarity; higher is closer (cosine).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="The stored metadata.")


class ConversationSnapshot(BaseModel):
    """A conversation as the voice platform reports it."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    conversation_id: str = Field(description="The conversation id.")
    status: str = Field(description="Platform status; `done` when the transcript is final.")
    transcript: list[TranscriptTurn] = Field(default_factory=list, description="The transcript.")
    duration_secs: int | None = Field(default=None, description="Call length in seconds.")

    @property
    def is_done(self) -> bool:
        """Whether the transcript is final."""
        return self.status == "done"


class CallLogEntry(BaseModel):
    """The persisted outcome of a general call (one row per conversation)."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    tenant_id: str = Field(description="The tenant.")
    conversation_id: str = Field(description="The conversation id (primary key).")
    agent_id: str = Field(description="The voice agent.")
    job_id: str = Field(description="The job that produced it.")
    analysis: CallAnalysis = Field(description="Summary, topics, sentiment, callback.")
    duration_secs: int | None = Field(default=None, description="Call length in seconds.")
    call_status: str | None = Field(default=None, description="The platform's call status.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")


CallPurpose = Literal["daily", "callback"]
"""Why an outbound call is made: a user's daily call, or a callback a caller asked for."""

CallEnding = Literal["completed", "failed", "no_answer", "busy"]
"""How the telephony provider ends a call."""

ProviderCallStatus = Literal["ringing", "in_progress", CallEnding]
"""What the telephony provider's status webhooks say of a call."""

CallStatus = Literal[
    "scheduled",
    "queued",
    "placing",
    "placed",
    "unknown",
    "cancelled",
    "missed",
    "unplaceable",
    ProviderCallStatus,
]
"""Where an outbound call is. A call only moves forward, from ``scheduled`` (a retry) or
``queued`` to an ending; ``unknown`` may have been placed (on-call reviews it); ``missed``,
``unplaceable`` and ``cancelled`` were never placed. The call book draws the whole graph
(``infra.store.dialing``)."""


class OutboundCall(BaseModel):
    """One attempt at one outbound call, as the call book holds it."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    id: str = Field(description="The call's id.")
    tenant_id: str = Field(description="The tenant.")
    purpose: CallPurpose = Field(description="`daily` or `callback`.")
    user_id: str | None = Field(default=None, description="The user, for a daily call.")
    conversation_id: str | None = Field(
        default=None, description="The conversation that asked for it, for a callback."
    )
    local_date: date | None = Field(default=None, description="The user's local date.")
    attempt: int = Field(description="1 for the first attempt.")
    phone: str = Field(description="The number called, E.164.")
    agent_id: str | None = Field(default=None, description="The voice agent.")
    caller_id: str | None = Field(default=None, description="The number called from.")
    status: CallStatus = Field(description="Where the call is (see ``CallStatus``).")
    due_at: datetime | None = Field(default=None, description="When it is (or was) due.")
    job_id: str | None = Field(default=None, description="The tick job that queued it.")
    provider_call_id: str | None = Field(default=None, description="The provider's call id.")
    placed_at: datetime | None = Field(default=None, description="When the provider took it.")
    ended_at: datetime | None = Field(default=None, description="When it ended.")
    duration_secs: int | None = Field(default=None, description="Its length, once ended.")
    error: str | None = Field(default=None, description="Why it failed, when it did.")


def tenant_namespace(tenant_id: str) -> str:
    """The vector namespace that holds one tenant's calls (tenants never share one)."""
    return f"tenant-{tenant_id}"


def summary_vector_id(conversation_id: str) -> str:
    """The deterministic id of a call's summary vector."""
    return f"{conversation_id}#summary"


def transcript_vector_id(conversation_id: str, chunk: int) -> str:
    """The deterministic id of the ``chunk``-th transcript chunk's vector."""
    return f"{conversation_id}#transcript-{chunk}"
