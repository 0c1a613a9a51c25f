"""Plain records the SQL store returns to producers, the scheduler and the actor shell.

Step ports (``actors.ports``) exchange contracts and ``contracts.values``; these records
serve the processes' own bookkeeping: tenants, the job ledger (inbox), job progress.

Job states are the same for every workflow (``JobStatus``)::

    queued ──► processing ──► completed
                   │   ▲
                   ▼   │ (a dead letter replayed)
                 failed

A job is ``queued`` until its first message starts, ``completed`` when none of its
messages is outstanding, and ``failed`` while one of them is dead-lettered. Each
message of a job moves ``queued → processing ⇄ retrying → completed | failed``
(``MessageStatus``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from contracts import CallAnalysis, Contract, HealthAnswer
from contracts.users import CallPreferences
from contracts.values import OutboundCall

AgentKind = Literal["general", "health_check"]
JobStatus = Literal["queued", "processing", "completed", "failed"]
MessageStatus = Literal["queued", "processing", "retrying", "completed", "failed"]
CallbackStatus = Literal["scheduled", "queued", "unplaceable"]
"""A callback waits ``scheduled``, is ``queued`` as a call, or is ``unplaceable`` (no number)."""
OUTSTANDING: tuple[MessageStatus, ...] = ("queued", "processing", "retrying")
"""Message states that keep a job from completing."""


@dataclass(frozen=True)
class Tenant:
    """A customer of the platform."""

    id: str
    name: str
    timezone: str
    created_at: datetime


@dataclass(frozen=True)
class AgentBinding:
    """A voice agent and the tenant it belongs to."""

    agent_id: str
    kind: AgentKind
    tenant: Tenant


@dataclass(frozen=True)
class InboxEntry:
    """A request to record in the job ledger (the inbox).

    Attributes:
        source: Where it came from (``elevenlabs``, ``scheduler``…).
        external_id: Its natural id at the source (a conversation id), or the
            ``Idempotency-Key`` it was sent with.
        tenant_id: The tenant; None for jobs of the platform itself (scheduler ticks).
        kind: The job's kind: the pipeline it runs (``post_call``, ``health_check``).
        contract: The job's first contract; its ``job_id`` is the job's id.
        request_hash: SHA-256 of the request body, kept for ``Idempotency-Key`` checks.
    """

    source: str
    external_id: str
    tenant_id: str | None
    kind: str
    contract: Contract
    request_hash: str | None = None

    @property
    def dedupe_key(self) -> str:
        """``<source>/<tenant or ->/<external id>``: one job per key."""
        return f"{self.source}/{self.tenant_id or '-'}/{self.external_id}"


@dataclass(frozen=True)
class AcceptedJob:
    """The outcome of recording an inbound request in the job ledger."""

    job_id: str
    created: bool
    """False when the same dedupe key was accepted before (a duplicate)."""
    published: bool
    """Whether the job's first message is known to be on the bus."""
    request_hash: str | None = None
    """The request hash stored with the first request of this key."""


@dataclass(frozen=True)
class PendingJob:
    """An accepted job whose first message is not yet known to be published."""

    job_id: str
    contract: str
    payload: dict[str, Any]
    correlation_id: str
    tenant_id: str | None
    accepted_at: datetime


@dataclass(frozen=True)
class RelayBacklog:
    """The accepted jobs whose first message is not yet known to be published.

    Attributes:
        jobs: How many.
        oldest_accepted_at: When the oldest of them was accepted (None: none waits).
    """

    jobs: int
    oldest_accepted_at: datetime | None


@dataclass(frozen=True)
class StalledJob:
    """A published job that has not moved for longer than the stall threshold."""

    job_id: str
    contract: str
    payload: dict[str, Any]
    correlation_id: str
    redrives: int
    updated_at: datetime


@dataclass(frozen=True)
class MessageRef:
    """One message of a job, as progress records it.

    Attributes:
        key: The message's idempotency key (unique within its job).
        step: The step (actor) that consumes it.
        position: The step's place in its pipeline (0 for the first).
    """

    key: str
    step: str
    position: int


@dataclass(frozen=True)
class StepRecord:
    """Progress of one step of a job, over every message it consumed."""

    name: str
    status: MessageStatus
    attempts: int
    error: str | None
    updated_at: datetime
    messages: int = 1


@dataclass(frozen=True)
class ChildCounts:
    """The messages a job's steps published (every message but the first)."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    outstanding: int = 0


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: the step, its error and the dead letter to look at."""

    step: str | None
    error: str | None
    dead_letter_id: str | None


@dataclass(frozen=True)
class JobView:
    """Everything ``GET /api/jobs/{job_id}`` shows."""

    job_id: str
    kind: str
    status: JobStatus
    tenant_id: str | None
    tenant_name: str | None
    correlation_id: str
    created_at: datetime
    updated_at: datetime
    steps: list[StepRecord]
    children: ChildCounts
    failure: JobFailure | None
    redrives: int


@dataclass(frozen=True)
class CallbackRecord:
    """A callback due for a call."""

    due_at: datetime
    reason: str
    status: CallbackStatus


@dataclass(frozen=True)
class CallView:
    """Everything ``GET /api/calls/{conversation_id}`` shows."""

    conversation_id: str
    job_id: str
    tenant_id: str
    tenant_name: str
    kind: AgentKind
    status: JobStatus
    steps: list[StepRecord]
    analysis: CallAnalysis | None
    duration_secs: int | None
    callback: CallbackRecord | None
    health_answers: list[HealthAnswer] = field(default_factory=list)


@dataclass(frozen=True)
class UserRecord:
    """A user as the API shows them.

    Attributes:
        id: The user's id.
        tenant_id: Their tenant.
        name: Their name.
        phone: Their number, E.164.
        preferences: When they are called.
        next_call_at: Their next call (UTC), None while calls are off.
        next_local_date: The local date of that call.
        created_at: When they were added.
    """

    id: str
    tenant_id: str
    name: str
    phone: str
    preferences: CallPreferences
    next_call_at: datetime | None
    next_local_date: date | None
    created_at: datetime


@dataclass(frozen=True)
class TelephonyEvent:
    """A status webhook of the telephony provider, as the API read it.

    Attributes:
        event_key: Equal for every delivery of the same event.
        status: ``ringing``, ``in_progress``, ``completed``, ``failed``, ``no_answer``
            or ``busy``.
        call_id: Our call id, when the provider echoed it back in the metadata.
        provider_call_id: The provider's call id.
        occurred_at: When it happened (the provider's timestamp, or when received).
        duration_secs: The call's length, on its last event.
        error: The provider's error message, if any.
        payload: The event as received, kept with it.
    """

    event_key: str
    status: str
    call_id: str | None
    provider_call_id: str | None
    occurred_at: datetime
    duration_secs: int | None
    error: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class EventOutcome:
    """What an event did.

    Attributes:
        outcome: ``applied``, ``ignored`` (not a valid transition), ``duplicate`` or
            ``unknown_call``.
        call: The call after the event (None for an unknown call).
        retry: The retry it scheduled, if any.
    """

    outcome: str
    call: OutboundCall | None
    retry: OutboundCall | None = None
