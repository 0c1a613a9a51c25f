"""Contracts of the post-call pipelines (general calls and health-check calls).

General calls::

    PostCallJobData ─fetch_transcript─► CallTranscribed ─analyze_call─► CallAnalyzed
        ─index_call─► CallIndexed ─persist_call─► ScheduleCallbackCommand (only when the
        caller asked for a callback) ─schedule_callback─► (end)

Health-check calls::

    HealthCheckJobData ─record_health_check─► (end)

Every contract is keyed by the tenant and the conversation id, so a replay or a
duplicate delivery is a no-op at every step, and two tenants whose voice platforms
reuse a conversation id never collide.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from contracts.base import Contract, Route, Value
from contracts.fields import (
    AwareDatetime,
    FiniteFloat,
    Identifier,
    PhoneNumber,
    Seconds,
    Text,
    TimeZoneName,
)

Sentiment = Literal["positive", "neutral", "negative"]


class TranscriptTurn(Value):
    """One turn of a call's transcript."""

    role: Literal["agent", "user"] = Field(description="Who spoke: the AI agent or the caller.")
    message: Text = Field(description="What was said.")
    time_in_call_secs: FiniteFloat | None = Field(
        default=None, ge=0, description="Seconds from the start of the call to this turn."
    )


class CallbackRequest(Value):
    """The caller asked to be called back."""

    due_at: AwareDatetime = Field(description="When to call back (UTC offset required).")
    reason: Text = Field(description="Why the caller wants a callback, in a sentence.")


class CallAnalysis(Value):
    """What the analyzer found in a call."""

    summary: Text = Field(description="A few sentences summarising the call.")
    topics: list[Text] = Field(description="Short topic labels, most important first.")
    sentiment: Sentiment = Field(description="The caller's overall sentiment.")
    callback: CallbackRequest | None = Field(
        default=None, description="Set when the caller asked to be called back."
    )
    analyzer: Text = Field(
        description="Which analyzer produced this (e.g. `local`, `openai:gpt-4o-mini`)."
    )


class HealthAnswer(Value):
    """One structured answer of a health-check call."""

    question: Text = Field(description="The question asked, as a stable identifier or text.")
    answer: Text = Field(description="The caller's answer in words.")
    value: FiniteFloat | None = Field(
        default=None, description="A numeric value, when there is one."
    )
    unit: Text | None = Field(default=None, description="Unit of `value` (e.g. `mmHg`, `hours`).")


def _correlation_schema(schema: dict[str, Any]) -> None:
    # The validator below sets it: producers may leave it out, and "" is no default.
    schema["properties"]["correlation_id"].pop("default", None)


class _CallContract(Contract):
    """A message about one call: its correlation id is always its conversation id.

    Call views find a call's job by it, so a producer cannot set another one.
    """

    model_config = ConfigDict(json_schema_extra=_correlation_schema)

    correlation_id: Identifier = Field(
        default="",
        description="The conversation id (set from it; any other value is replaced).",
    )
    tenant_id: Identifier = Field(description="The tenant the call belongs to.")
    conversation_id: Identifier = Field(description="The voice platform's conversation id.")
    agent_id: Identifier = Field(description="The voice agent that handled the call.")
    caller_number: PhoneNumber | None = Field(
        default=None, description="The caller's number (E.164), when the platform sent one."
    )

    @model_validator(mode="before")
    @classmethod
    def _correlate_by_conversation(cls, data: Any) -> Any:
        if isinstance(data, dict) and "conversation_id" in data:
            return {**data, "correlation_id": data["conversation_id"]}
        return data

    def _key(self, kind: str) -> str:
        return f"{kind}:{self.tenant_id}:{self.conversation_id}"


class PostCallJobData(_CallContract):
    """Command: process a finished general call. Published by the post-call webhook."""

    route = Route(queue="calls.transcript", actor="fetch_transcript")

    transcript: list[TranscriptTurn] | None = Field(
        default=None, description="The transcript when the webhook carried it; else fetched."
    )
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: Seconds | None = Field(default=None, description="Call length in seconds.")
    call_status: Text | None = Field(default=None, description="The platform's call status.")
    timezone: TimeZoneName = Field(default="UTC", description="The tenant's IANA time zone.")

    @property
    def idempotency_key(self) -> str:
        """One job per conversation of a tenant."""
        return self._key("post-call")


class CallTranscribed(_CallContract):
    """Event: the call's transcript is available."""

    route = Route(queue="calls.analyze", actor="analyze_call")

    transcript: list[TranscriptTurn] = Field(description="The whole transcript.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: Seconds | None = Field(default=None, description="Call length in seconds.")
    call_status: Text | None = Field(default=None, description="The platform's call status.")
    timezone: TimeZoneName = Field(default="UTC", description="The tenant's IANA time zone.")

    @property
    def idempotency_key(self) -> str:
        """One transcript per conversation."""
        return self._key("call-transcribed")


class CallAnalyzed(_CallContract):
    """Event: the call was analyzed."""

    route = Route(queue="calls.index", actor="index_call")

    transcript: list[TranscriptTurn] = Field(description="The whole transcript.")
    analysis: CallAnalysis = Field(description="Summary, topics, sentiment and callback.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: Seconds | None = Field(default=None, description="Call length in seconds.")
    call_status: Text | None = Field(default=None, description="The platform's call status.")

    @property
    def idempotency_key(self) -> str:
        """One analysis per conversation."""
        return self._key("call-analyzed")


class CallIndexed(_CallContract):
    """Event: the call's summary and transcript are in the tenant's vector namespace."""

    route = Route(queue="calls.persist", actor="persist_call")

    analysis: CallAnalysis = Field(description="Summary, topics, sentiment and callback.")
    vector_ids: list[Text] = Field(description="Deterministic ids of the upserted vectors.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: Seconds | None = Field(default=None, description="Call length in seconds.")
    call_status: Text | None = Field(default=None, description="The platform's call status.")

    @property
    def idempotency_key(self) -> str:
        """One index entry set per conversation."""
        return self._key("call-indexed")


class ScheduleCallbackCommand(_CallContract):
    """Command: record a due callback for a call whose caller asked for one."""

    route = Route(queue="calls.callback", actor="schedule_callback")

    callback: CallbackRequest = Field(description="When and why to call back.")

    @property
    def idempotency_key(self) -> str:
        """At most one callback per conversation."""
        return self._key("callback")


class HealthCheckJobData(_CallContract):
    """Command: record the structured answers of a finished health-check call.

    The live-call service leaves the call's state in a checkpoint (a Redis hash keyed by
    the thread id, which is the conversation id unless the webhook says otherwise).
    """

    route = Route(queue="calls.health", actor="record_health_check")

    thread_id: Identifier = Field(
        description="The checkpoint thread id written by the live-call service."
    )

    @property
    def idempotency_key(self) -> str:
        """One set of answers per conversation."""
        return self._key("health-check")
