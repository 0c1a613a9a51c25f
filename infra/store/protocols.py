"""The store's interfaces as the processes use them (SQL adapters implement them).

``actors.ports`` holds the step ports; these serve the producers (tenants, intake,
job and call views), the scheduler (relay, re-drives) and the actor shell (progress).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.users import CallPreferences, NewUser
from contracts.values import OutboundCall
from infra.store.records import (
    AcceptedJob,
    AgentBinding,
    AgentKind,
    CallView,
    EventOutcome,
    InboxEntry,
    JobView,
    MessageRef,
    PendingJob,
    StalledJob,
    TelephonyEvent,
    Tenant,
    UserRecord,
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

    def accept(self, entry: InboxEntry) -> AcceptedJob:
        """Record a request once per dedupe key, with its first message queued.

        A second call with the same key changes nothing and returns the first job's id
        with ``created=False``.
        """
        ...

    def mark_published(self, *job_ids: str) -> None:
        """Record that these jobs' first messages are on the bus."""
        ...

    def pending(self, *, min_age_s: float, limit: int) -> list[PendingJob]:
        """Accepted jobs not yet published, oldest first, accepted ``min_age_s`` ago."""
        ...

    def stalled(self, *, idle_s: float, limit: int) -> list[StalledJob]:
        """Published, unfinished jobs without progress for ``idle_s``, oldest first."""
        ...

    def mark_redriven(self, job_id: str) -> None:
        """Count a re-drive of the job and restart its idle clock."""
        ...

    def fail_stalled(self, job_id: str, *, error: str) -> None:
        """Fail a job that stayed stalled through every re-drive it was allowed."""
        ...

    def fail_at_intake(self, job_id: str, *, error: str) -> bool:
        """Fail a pending job whose first message no longer validates (never relayed)."""
        ...

    def record_rejection(
        self, *, source: str, external_id: str | None, reason: str, payload: bytes
    ) -> None:
        """Keep a request that was authenticated but could not be accepted."""
        ...


class JobProgress(Protocol):
    """Per-message progress written by the actor shell."""

    def message_started(self, job_id: str, message: MessageRef) -> None:
        """Count an attempt; the message becomes processing (unless it completed)."""
        ...

    def message_succeeded(
        self, job_id: str, message: MessageRef, *, children: Sequence[MessageRef] = ()
    ) -> None:
        """Complete the message and record the messages it published as queued."""
        ...

    def message_failed(
        self, job_id: str, message: MessageRef, *, error: str, dead_letter_id: str | None
    ) -> None:
        """Record an error: retrying, or (with a dead letter) failed, failing the job."""
        ...


class JobQueries(Protocol):
    """Read side of the jobs API."""

    def job_view(self, job_id: str, *, tenant_id: str | None) -> JobView | None:
        """The job, or None if unknown or (with ``tenant_id``) another tenant's."""
        ...

    def failed_at_intake(self, *, limit: int = 100) -> list[JobView]:
        """Jobs whose first message no longer validated, so were never published; newest first."""
        ...

    def count_failed_at_intake(self) -> int:
        """How many jobs failed at intake."""
        ...


class CallQueries(Protocol):
    """Read side of the calls API."""

    def find_calls(self, conversation_id: str, *, tenant_id: str | None) -> list[CallView]:
        """The call in every tenant that has it (one with ``tenant_id``), by tenant name."""
        ...

    def call_views(self, conversation_ids: Sequence[str], *, tenant_id: str) -> list[CallView]:
        """Several calls of one tenant, in the order given (unknown ids skipped)."""
        ...


class UserDirectory(Protocol):
    """Users called every day, and their call preferences."""

    def add_user(self, tenant_id: str, user: NewUser) -> UserRecord:
        """Add a user of ``tenant_id``; their first call is computed from now."""
        ...

    def get_user(self, user_id: str, *, tenant_id: str | None) -> UserRecord | None:
        """One user (of ``tenant_id`` unless None), or None."""
        ...

    def set_preferences(
        self, user_id: str, preferences: CallPreferences, *, tenant_id: str | None
    ) -> UserRecord | None:
        """Replace a user's call preferences; None when there is no such user."""
        ...

    def list_users(self, *, tenant_id: str | None, limit: int = 100) -> list[UserRecord]:
        """Users (of one tenant unless None), by name."""
        ...


class OutboundCallBook(Protocol):
    """The API's side of the call book: status webhooks in, users' calls out."""

    def apply_event(self, event: TelephonyEvent) -> EventOutcome:
        """Record a telephony status event and apply it if it moves its call forward."""
        ...

    def calls_of_user(self, user_id: str, *, limit: int = 100) -> list[OutboundCall]:
        """A user's calls, newest first."""
        ...

    def needing_review(self, *, limit: int = 100) -> list[OutboundCall]:
        """Calls of unknown outcome (asked for, no answer), newest first."""
        ...
