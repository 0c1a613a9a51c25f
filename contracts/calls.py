"""Contracts of the post-call pipelines (general calls and health-check calls).

General calls::

    PostCallJobData ─fetch_transcript─► CallTranscribed ─analyze_call─► CallAnalyzed
        ─index_call─► CallIndexed ─persist_call─► ScheduleCallbackCommand (only when the
        caller asked for a callback) ─schedule_callback─► (end)

Health-check calls::

    HealthCheckJobData ─record_health_check─► (end)

Every contract is keyed by the conversation id, so a replay or a duplicate delivery is
a no-op at every step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import AwareDatetime, Contract, Route

Sentiment = Literal["positive", "neutral", "negative"]


class TranscriptTurn(BaseModel):
    """One turn of a call's transcript."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    role: Literal["agent", "user"] = Field(description="Who spoke: the AI agent or the caller.")
    message: str = Field(description="What was said.")
    time_in_call_secs: float | None = Field(
        default=None, description="Seconds from the start of the call to this turn."
    )


class CallbackRequest(BaseModel):
    """The caller asked to be called back."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    due_at: AwareDatetime = Field(description="When to call back (UTC offset required).")
    reason: str = Field(description="Why the caller wants a callback, in a sentence.")


class CallAnalysis(BaseModel):
    """What the analyzer found in a call."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    summary: str = Field(description="A few sentences summarising the call.")
    topics: list[str] = Field(description="Short topic labels, most important first.")
    sentiment: Sentiment = Field(description="The caller's overall sentiment.")
    callback: CallbackRequest | None = Field(
        default=None, description="Set when the caller asked to be called back."
    )
    analyzer: str = Field(
        description="Which analyzer produced this (e.g. `local`, `openai:gpt-4o-mini`)."
    )


class HealthAnswer(BaseModel):
    """One structured answer of a health-check call."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    question: str = Field(description="The question asked, as a stable identifier or text.")
    answer: str = Field(description="The caller's answer in words.")
    value: float | None = Field(default=None, description="A numeric value, when there is one.")
    unit: str | None = Field(default=None, description="Unit of `value` (e.g. `mmHg`, `hours`).")


class _CallContract(Contract):
    job_id: str = Field(description="The job id returned to the webhook sender (the inbox row).")
    tenant_id: str = Field(description="The tenant the call belongs to.")
    conversation_id: str = Field(description="The voice platform's conversation id.")
    agent_id: str = Field(description="The voice agent that handled the call.")

    @property
    def correlation_id(self) -> str:
        """The conversation id: every log line of the pipeline carries it."""
        return self.conversation_id

    @property
    def tenant(self) -> str:
        """The tenant id."""
        return self.tenant_id


class PostCallJobData(_CallContract):
    """Command: process a finished general call. Published by the post-call webhook."""

    route = Route(queue="calls.transcript", actor="fetch_transcript")

    transcript: list[TranscriptTurn] | None = Field(
        default=None, description="The transcript when the webhook carried it; else fetched."
    )
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: int | None = Field(default=None, description="Call length in seconds.")
    call_status: str | None = Field(default=None, description="The platform's call status.")
    timezone: str = Field(default="UTC", description="The tenant's IANA time zone.")

    @property
    def idempotency_key(self) -> str:
        """One job per conversation."""
        return f"post-call:{self.conversation_id}"


class CallTranscribed(_CallContract):
    """Event: the call's transcript is available."""

    route = Route(queue="calls.analyze", actor="analyze_call")

    transcript: list[TranscriptTurn] = Field(description="The whole transcript.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: int | None = Field(default=None, description="Call length in seconds.")
    call_status: str | None = Field(default=None, description="The platform's call status.")
    timezone: str = Field(default="UTC", description="The tenant's IANA time zone.")

    @property
    def idempotency_key(self) -> str:
        """One transcript per conversation."""
        return f"call-transcribed:{self.conversation_id}"


class CallAnalyzed(_CallContract):
    """Event: the call was analyzed."""

    route = Route(queue="calls.index", actor="index_call")

    transcript: list[TranscriptTurn] = Field(description="The whole transcript.")
    analysis: CallAnalysis = Field(description="Summary, topics, sentiment and callback.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: int | None = Field(default=None, description="Call length in seconds.")
    call_status: str | None = Field(default=None, description="The platform's call status.")

    @property
    def idempotency_key(self) -> str:
        """One analysis per conversation."""
        return f"call-analyzed:{self.conversation_id}"


class CallIndexed(_CallContract):
    """Event: the call's summary and transcript are in the tenant's vector namespace."""

    route = Route(queue="calls.persist", actor="persist_call")

    analysis: CallAnalysis = Field(description="Summary, topics, sentiment and callback.")
    vector_ids: list[str] = Field(description="Deterministic ids of the upserted vectors.")
    started_at: AwareDatetime | None = Field(default=None, description="When the call started.")
    duration_secs: int | None = Field(default=None, description="Call length in seconds.")
    call_status: str | None = Field(default=None, description="The platform's call status.")

    @property
    def idempotency_key(self) -> str:
        """One index entry set per conversation."""
        return f"call-indexed:{self.conversation_id}"


class ScheduleCallbackCommand(_CallContract):
    """Command: record a due callback for a call whose caller asked for one."""

    route = Route(queue="calls.callback", actor="schedule_callback")

    callback: CallbackRequest = Field(description="When and why to call back.")

    @property
    def idempotency_key(self) -> str:
        """At most one callback per conversation."""
        return f"callback:{self.conversation_id}"


class HealthCheckJobData(_CallContract):
    """Command: record the structured answers of a finished health-check call.

    The live-call service leaves the call's state in a checkpoint (a Redis hash keyed by
    the thread id, which is the conversation id unless the webhook says otherwise).
    """

    route = Route(queue="calls.health", actor="record_health_check")

    thread_id: str = Field(description="The checkpoint thread id written by the live-call service.")

    @property
    def idempotency_key(self) -> str:
        """One set of answers per conversation."""
        return f"health-check:{self.conversation_id}"
