"""The answers of ``/api/calls/{conversation_id}`` and its similar calls."""

from __future__ import annotations

from pydantic import BaseModel, Field

from contracts import HealthAnswer, Sentiment
from infra.store.records import AgentKind, CallbackStatus, JobStatus
from producers.schemas import Answer, Moment
from producers.schemas.jobs import Step

MAX_K = 50
DEFAULT_K = 5


class Callback(Answer):
    """A callback the caller asked for."""

    due_at: Moment = Field(description="When the caller is to be called back.")
    reason: str = Field(description="What the caller said.")
    status: CallbackStatus = Field(
        description="`scheduled`; `queued`: placed as a call; `unplaceable`: no number."
    )


class Call(Answer):
    """An analysed call, step by step, and its results."""

    conversation_id: str = Field(description="The voice platform's conversation id.")
    job_id: str = Field(description="The job that processes it (`GET /api/jobs/{job_id}`).")
    tenant: str = Field(description="Its tenant's name.")
    tenant_id: str = Field(description="Its tenant's id.")
    kind: AgentKind = Field(description="`general` or `health_check`.")
    status: JobStatus = Field(description="Its job's status.")
    steps: list[Step] = Field(description="Its job's steps, in pipeline order.")
    summary: str | None = Field(description="The analysis' summary, once analysed.")
    topics: list[str] = Field(description="Topic labels, most important first.")
    sentiment: Sentiment | None = Field(description="The caller's overall sentiment.")
    duration_secs: int | None = Field(description="Its length in seconds.")
    callback: Callback | None = Field(description="The callback it asked for, if any.")
    health_answers: list[HealthAnswer] = Field(description="A health-check call's answers.")


class SimilarCall(Answer):
    """A call similar to another."""

    conversation_id: str = Field(description="Its conversation id.")
    score: float = Field(description="How similar, higher is closer.")
    summary: str | None = Field(description="Its summary.")
    topics: list[str] = Field(description="Its topics.")


class SimilarCalls(Answer):
    """The calls of the same tenant most similar to one, most similar first."""

    conversation_id: str = Field(description="The call they are similar to.")
    similar: list[SimilarCall] = Field(description="Most similar first.")


class TenantChoice(BaseModel):
    """The query of a call's read."""

    tenant: str | None = Field(
        default=None,
        description="The admin's choice of tenant, when several have a call with this id "
        "(a tenant's key ignores it).",
    )


class SimilarQuery(TenantChoice):
    """The query of similar calls."""

    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K, description="How many calls.")
