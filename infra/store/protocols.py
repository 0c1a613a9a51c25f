"""The store's interfaces as the processes use them (SQL adapters implement them).

``actors.ports`` holds the step ports; these serve the producers (tenants, intake,
call views), the scheduler (relay) and the actor shell (step progress).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from infra.store.records import (
    AcceptedJob,
    AgentBinding,
    AgentKind,
    CallView,
    PendingJob,
    Tenant,
)


class TenantDirectory(Protocol):
    """Tenants, their agents and API keys."""

    def add_tenant(self, name: str, *, timezone: str = "UTC") -> tuple[Tenant, str]:
        """Create a tenant; return it with its new API key (shown once, stored hashed).

        Raises:
            ValueError: A tenant with this name exists, or the time zone is unknown.
        """
        ...

    def bind_agent(self, tenant_id: str, agent_id: str, *, kind: AgentKind) -> None:
        """Bind an agent id to a tenant (rebinding moves it)."""
        ...

    def rotate_key(self, name: str) -> str:
        """Issue a new API key for the tenant named ``name``; the old one stops working.

        Raises:
            LookupError: No tenant has this name.
        """
        ...

    def list_tenants(self) -> list[tuple[Tenant, list[tuple[str, AgentKind]]]]:
        """Every tenant with its (agent id, kind) bindings."""
        ...

    def tenant_by_name(self, name: str) -> Tenant | None:
        """The tenant named ``name``."""
        ...

    def agent(self, agent_id: str) -> AgentBinding | None:
        """Resolve a webhook's agent id."""
        ...

    def tenant_for_key(self, api_key: str) -> Tenant | None:
        """Resolve a bearer token to its tenant (constant-time on the hash)."""
        ...


class JobLedger(Protocol):
    """The inbox: every accepted request, committed before it is answered."""

    def accept(
        self,
        *,
        source: str,
        external_id: str,
        tenant_id: str,
        kind: AgentKind,
        contract: str,
        payload: dict[str, Any],
        correlation_id: str,
        job_id: str,
    ) -> AcceptedJob:
        """Record a request once per (source, external id).

        A second call with the same source and external id changes nothing and returns
        the first job's id with ``created=False``.
        """
        ...

    def mark_published(self, job_id: str) -> None:
        """Record that the job's first message is on the bus."""
        ...

    def pending(self, *, min_age_s: float, limit: int) -> list[PendingJob]:
        """Accepted jobs not yet published, oldest first, accepted ``min_age_s`` ago."""
        ...

    def record_rejection(
        self, *, source: str, external_id: str | None, reason: str, payload: bytes
    ) -> None:
        """Keep a request that was authenticated but could not be accepted."""
        ...


class JobProgress(Protocol):
    """Step-by-step progress written by the actor shell."""

    def step_started(self, job_id: str, step: str) -> None:
        """Mark the step processing and count an attempt; the job becomes processing."""
        ...

    def step_succeeded(self, job_id: str, step: str, *, final: bool) -> None:
        """Mark the step completed; ``final`` completes the job too."""
        ...

    def step_failed(self, job_id: str, step: str, *, error: str, dead: bool) -> None:
        """Record an error; ``dead`` (dead-lettered) fails the step and the job."""
        ...


class CallQueries(Protocol):
    """Read side of the calls API."""

    def call_view(self, conversation_id: str, *, tenant_id: str | None) -> CallView | None:
        """The call, or None if unknown or (with ``tenant_id``) another tenant's."""
        ...

    def call_views(self, conversation_ids: Sequence[str], *, tenant_id: str) -> list[CallView]:
        """Several calls of one tenant, in the order given (unknown ids skipped)."""
        ...
