"""Plain records the SQL store returns to producers, the scheduler and the actor shell.

Step ports (``actors.ports``) exchange contracts and ``contracts.values``; these records
serve the processes' own bookkeeping: tenants, the job ledger (inbox), step progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from contracts import CallAnalysis, HealthAnswer

AgentKind = Literal["general", "health_check"]
JobStatus = Literal["queued", "processing", "completed", "failed"]
StepStatus = Literal["processing", "retrying", "completed", "failed"]


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
class AcceptedJob:
    """The outcome of recording an inbound request in the job ledger."""

    job_id: str
    created: bool
    """False when the same source + external id was accepted before (a duplicate)."""
    published: bool
    """Whether the job's first message is known to be on the bus."""


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
class StepRecord:
    """Progress of one pipeline step of a job."""

    name: str
    status: StepStatus
    attempts: int
    error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class CallbackRecord:
    """A callback due for a call."""

    due_at: datetime
    reason: str
    status: str


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
