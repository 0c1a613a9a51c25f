"""Builders of contracts with valid defaults; keyword overrides replace any field.

Defaults describe one consistent call (same job, tenant, conversation and agent in
every builder), so the output of one builder can stand in for the input of the next
step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from contracts import (
    CallAnalysis,
    CallAnalyzed,
    CallbackRequest,
    CallIndexed,
    CallTranscribed,
    Contract,
    HealthAnswer,
    HealthCheckJobData,
    PostCallJobData,
    TranscriptTurn,
)
from contracts.values import summary_vector_id, transcript_vector_id
from infra.store.records import InboxEntry

JOB_ID = "job-0001"
TENANT_ID = "tenant-acme"
CONVERSATION_ID = "conv_0001"
AGENT_ID = "agent_general"
STARTED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _call_fields(overrides: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "job_id": JOB_ID,
        "tenant_id": TENANT_ID,
        "conversation_id": CONVERSATION_ID,
        "agent_id": AGENT_ID,
    }
    return fields | overrides


def _call_details(**extra: Any) -> dict[str, Any]:
    """The identity of the default call plus the details every pipeline contract carries."""
    return _call_fields(
        {"started_at": STARTED_AT, "duration_secs": 95, "call_status": "done", **extra}
    )


def make_transcript() -> list[TranscriptTurn]:
    """A short call in which the caller asks to be called back tomorrow."""
    lines: list[tuple[Literal["agent", "user"], str]] = [
        ("agent", "Hello, this is Ava from Acme Energy. How can I help you today?"),
        ("user", "Hi, my last bill looks far too high and I would like to understand why."),
        ("agent", "I can see an estimated reading on it. Could you send a meter photo?"),
        ("user", "I'm driving now. Can you call me back tomorrow at 5 pm?"),
        ("agent", "Of course, we will call you back tomorrow at 5 pm. Goodbye!"),
    ]
    return [
        TranscriptTurn(role=role, message=message, time_in_call_secs=float(10 * i))
        for i, (role, message) in enumerate(lines)
    ]


def make_callback(**overrides: Any) -> CallbackRequest:
    """A callback request due the day after the default call."""
    fields: dict[str, Any] = {
        "due_at": datetime(2026, 3, 3, 17, 0, tzinfo=UTC),
        "reason": "Caller is driving and wants to discuss a high bill.",
    }
    return CallbackRequest.model_validate(fields | overrides)


def make_analysis(**overrides: Any) -> CallAnalysis:
    """An analysis of the default call, without a callback unless overridden."""
    fields: dict[str, Any] = {
        "summary": "The caller disputes a high bill based on an estimated meter reading.",
        "topics": ["billing", "meter reading"],
        "sentiment": "negative",
        "callback": None,
        "analyzer": "fixed",
    }
    return CallAnalysis.model_validate(fields | overrides)


def make_post_call_job(**overrides: Any) -> PostCallJobData:
    """A post-call job with an inline transcript."""
    fields = _call_details(transcript=make_transcript(), timezone="Europe/London")
    return PostCallJobData.model_validate(fields | overrides)


def make_transcribed(**overrides: Any) -> CallTranscribed:
    """A transcribed call."""
    fields = _call_details(transcript=make_transcript(), timezone="Europe/London")
    return CallTranscribed.model_validate(fields | overrides)


def make_analyzed(**overrides: Any) -> CallAnalyzed:
    """An analyzed call."""
    fields = _call_details(transcript=make_transcript(), analysis=make_analysis())
    return CallAnalyzed.model_validate(fields | overrides)


def make_indexed(**overrides: Any) -> CallIndexed:
    """An indexed call; its vector ids follow the (possibly overridden) conversation id."""
    fields = _call_details(analysis=make_analysis()) | overrides
    conversation = fields["conversation_id"]
    fields.setdefault(
        "vector_ids", [summary_vector_id(conversation), transcript_vector_id(conversation, 0)]
    )
    return CallIndexed.model_validate(fields)


def make_health_answers() -> list[HealthAnswer]:
    """Three answers of a typical health-check call."""
    return [
        HealthAnswer(question="blood_pressure", answer="128 over 84", value=128.0, unit="mmHg"),
        HealthAnswer(question="sleep_hours", answer="about seven hours", value=7.0, unit="hours"),
        HealthAnswer(question="took_medication", answer="yes, this morning"),
    ]


def make_health_check_job(**overrides: Any) -> HealthCheckJobData:
    """A health-check job whose thread id is its conversation id unless overridden."""
    fields = _call_fields({"agent_id": "agent_health"}) | overrides
    fields.setdefault("thread_id", fields["conversation_id"])
    return HealthCheckJobData.model_validate(fields)


def make_inbox_entry(contract: Contract, **overrides: Any) -> InboxEntry:
    """The inbox entry of a job starting with ``contract``, as the webhook records it.

    Defaults: source ``elevenlabs``, the contract's tenant, its correlation id as the
    external id, and the kind of pipeline its type starts.
    """
    kinds = {PostCallJobData: "post_call", HealthCheckJobData: "health_check"}
    fields: dict[str, Any] = {
        "source": "elevenlabs",
        "external_id": contract.correlation_id,
        "tenant_id": contract.tenant_id,
        "kind": kinds.get(type(contract), "test"),
        "contract": contract,
    }
    return InboxEntry(**(fields | overrides))
