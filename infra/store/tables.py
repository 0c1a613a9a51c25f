"""The SQL store's tables (SQLModel), the single source of the schema Alembic migrates to.

Repositories use the Core ``Table`` objects below (``TENANTS``, ``JOBS``, …) for
dialect-specific upserts. Every timestamp is a ``UtcDateTime``: stored as UTC, read back
as an aware UTC datetime on every database (SQLite keeps no offset of its own).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UtcDateTime(sa.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that converts to UTC on write and is aware on read.

    Raises:
        ValueError: A naive datetime is written (its instant would be ambiguous).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self,
        value: datetime | None,
        dialect: sa.Dialect,  # noqa: ARG002  (SQLAlchemy's signature)
    ) -> datetime | None:
        """Reject naive datetimes and convert aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        return value.astimezone(UTC)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: sa.Dialect,  # noqa: ARG002  (SQLAlchemy's signature)
    ) -> datetime | None:
        """Attach UTC to the naive values SQLite returns; convert others to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TenantRow(SQLModel, table=True):
    """A customer of the platform; its API key is stored as a SHA-256 hex digest."""

    __tablename__ = "tenants"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uq_tenants_name"),
        sa.UniqueConstraint("api_key_hash", name="uq_tenants_api_key_hash"),
    )

    id: str = Field(primary_key=True)
    name: str
    timezone: str
    api_key_hash: str
    call_agent_id: str | None = None
    caller_id: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class AgentRow(SQLModel, table=True):
    """A voice agent bound to a tenant."""

    __tablename__ = "agents"

    agent_id: str = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", index=True)
    kind: str


class JobRow(SQLModel, table=True):
    """The inbox: one row per accepted request, unique per ``dedupe_key``.

    ``dedupe_key`` is ``<source>/<tenant id or ->/<external id>``; the external id is
    the request's natural id (a conversation id) or its ``Idempotency-Key``. The
    ``messages_*`` counters summarise the job's ``job_messages`` rows, so deriving the
    job's status after each message never scans them.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
        sa.Index("ix_jobs_status_updated_at", "status", "updated_at"),
        # Retention walks each kind's finished jobs oldest first, in (age, id) order
        # (infra.store.retention): with the id in the index, a batch reads no more rows
        # than it takes.
        sa.Index("ix_jobs_retention", "kind", "status", "updated_at", "id"),
    )

    id: str = Field(primary_key=True)
    source: str
    external_id: str
    dedupe_key: str
    tenant_id: str | None = Field(default=None, foreign_key="tenants.id", index=True)
    kind: str
    contract: str
    payload: dict[str, Any] = Field(sa_type=sa.JSON)
    correlation_id: str = Field(index=True)
    request_hash: str | None = None
    status: str
    error: str | None = Field(default=None, sa_type=sa.Text)
    error_step: str | None = None
    dead_letter_id: str | None = None
    messages_total: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    messages_completed: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    messages_failed: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    redrives: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class JobMessageRow(SQLModel, table=True):
    """Progress of one message of a job, keyed by the message's idempotency key.

    A straight pipeline has one row per step; a step that fans out adds one row per
    message it published (``parent_key`` names the message that published it).
    ``position`` is the step's place in its pipeline, for ordering views.
    """

    __tablename__ = "job_messages"

    job_id: str = Field(foreign_key="jobs.id", primary_key=True)
    key: str = Field(primary_key=True)
    name: str
    position: int
    parent_key: str | None = None
    status: str
    attempts: int
    error: str | None = Field(default=None, sa_type=sa.Text)
    dead_letter_id: str | None = None
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class IntakeRejectionRow(SQLModel, table=True):
    """An authenticated request that could not be accepted, kept for inspection."""

    __tablename__ = "intake_rejections"
    __table_args__ = (sa.Index("ix_intake_rejections_retention", "created_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    external_id: str | None = None
    reason: str = Field(sa_type=sa.Text)
    payload: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime)


class CallLogRow(SQLModel, table=True):
    """The persisted outcome of a general call, one per (tenant, conversation)."""

    __tablename__ = "call_logs"

    tenant_id: str = Field(foreign_key="tenants.id", primary_key=True)
    conversation_id: str = Field(primary_key=True)
    agent_id: str
    job_id: str
    summary: str = Field(sa_type=sa.Text)
    topics: list[str] = Field(sa_type=sa.JSON)
    sentiment: str
    analysis: dict[str, Any] = Field(sa_type=sa.JSON)
    duration_secs: int | None = None
    call_status: str | None = None
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class CallbackRow(SQLModel, table=True):
    """A callback due for a call (at most one per tenant and conversation)."""

    __tablename__ = "callbacks"
    __table_args__ = (
        sa.UniqueConstraint(
            "tenant_id", "conversation_id", name="uq_callbacks_tenant_conversation"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id")
    conversation_id: str
    due_at: datetime = Field(sa_type=UtcDateTime, index=True)
    reason: str = Field(sa_type=sa.Text)
    status: str = Field(default="scheduled", sa_column_kwargs={"server_default": "scheduled"})
    phone: str | None = None
    agent_id: str | None = None
    call_id: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class HealthAnswerRow(SQLModel, table=True):
    """One structured answer of a health-check call."""

    __tablename__ = "health_answers"

    tenant_id: str = Field(foreign_key="tenants.id", primary_key=True)
    conversation_id: str = Field(primary_key=True)
    question: str = Field(primary_key=True)
    answer: str = Field(sa_type=sa.Text)
    value: float | None = None
    unit: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class VectorRow(SQLModel, table=True):
    """A vector of the local index; ``kind`` copies ``metadata["kind"]`` for filtering."""

    __tablename__ = "vectors"

    namespace: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    kind: str | None = Field(default=None, index=True)
    values: list[float] = Field(sa_type=sa.JSON)
    # ``metadata`` is SQLModel's own attribute; the column keeps the plain name.
    meta: dict[str, Any] = Field(sa_column=sa.Column("metadata", sa.JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UtcDateTime)


class UserRow(SQLModel, table=True):
    """A user called every day at their local call time.

    ``next_call_at`` is the UTC instant of their next call (None while calls are off),
    ``next_local_date`` the local date it belongs to; ticks select on the index.
    Times are stored as ``HH:MM:SS`` text.
    """

    __tablename__ = "users"

    id: str = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", index=True)
    name: str
    phone: str
    local_tz: str
    call_time: str
    call_enabled: bool
    window_start: str | None = None
    window_end: str | None = None
    next_call_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    next_local_date: date | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class OutboundCallRow(SQLModel, table=True):
    """One attempt at one outbound call: a user's daily call or a callback.

    A daily call is unique per (user, local date, attempt); a callback per (tenant,
    conversation, attempt). ``status`` runs ``scheduled`` (a retry waiting for its
    ``due_at``) → ``queued`` → ``placing`` → ``placed`` → ``ringing`` →
    ``in_progress`` → one of ``completed``, ``failed``, ``no_answer``, ``busy``; or
    straight to ``missed``, ``unplaceable``, ``cancelled`` or ``unknown`` (the provider
    may or may not have placed it: on-call reviews it).
    """

    __tablename__ = "outbound_calls"
    __table_args__ = (
        sa.UniqueConstraint(
            "user_id", "local_date", "attempt", name="uq_outbound_calls_user_date_attempt"
        ),
        sa.UniqueConstraint(
            "tenant_id", "conversation_id", "attempt", name="uq_outbound_calls_callback_attempt"
        ),
        sa.Index("ix_outbound_calls_status_due_at", "status", "due_at"),
        sa.Index("ix_outbound_calls_job_id_status", "job_id", "status"),
        sa.Index("ix_outbound_calls_retention", "updated_at", "id"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id")
    purpose: str
    user_id: str | None = Field(default=None, foreign_key="users.id")
    conversation_id: str | None = None
    local_date: date | None = None
    attempt: int
    phone: str
    agent_id: str | None = None
    caller_id: str | None = None
    status: str
    due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    job_id: str | None = None
    provider_call_id: str | None = Field(default=None, index=True)
    placed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    duration_secs: int | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class CallEventRow(SQLModel, table=True):
    """A telephony status webhook, kept whether or not it changed its call."""

    __tablename__ = "call_events"
    __table_args__ = (
        sa.UniqueConstraint("event_key", name="uq_call_events_event_key"),
        sa.Index("ix_call_events_retention", "received_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_key: str
    call_id: str | None = Field(default=None, index=True)
    provider_call_id: str | None = None
    status: str
    outcome: str
    deliveries: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    payload: dict[str, Any] = Field(sa_type=sa.JSON)
    received_at: datetime = Field(sa_type=UtcDateTime)


class SchedulerSlotRow(SQLModel, table=True):
    """The last slot each scheduler tick emitted, so a restart catches up."""

    __tablename__ = "scheduler_slots"

    name: str = Field(primary_key=True)
    last_slot: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class AuditRow(SQLModel, table=True):
    """One operator action on the platform (replay, edit, purge …): append-only.

    Nothing updates or deletes these rows; ``infra.store.audit`` only inserts and reads.
    """

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime, index=True)
    actor: str
    action: str = Field(index=True)
    target: str = Field(index=True)
    queue: str | None = None
    job_id: str | None = None
    reason: str = Field(sa_type=sa.Text)
    diff: str | None = Field(default=None, sa_type=sa.Text)
    outcome: str


class AdminTokenRow(SQLModel, table=True):
    """A named admin token: only its SHA-256 hex digest is stored."""

    __tablename__ = "admin_tokens"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uq_admin_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_admin_tokens_token_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str
    role: str
    token_hash: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ConsoleSessionRow(SQLModel, table=True):
    """A console login: only the SHA-256 hex digest of its cookie is stored.

    ``token_hash`` is the digest of the admin token it logged in with, so revoking the
    token ends its sessions too.
    """

    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True)
    admin: str
    role: str
    token_hash: str
    csrf: str
    notice: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


TENANTS = _table("tenants")
AGENTS = _table("agents")
JOBS = _table("jobs")
JOB_MESSAGES = _table("job_messages")
INTAKE_REJECTIONS = _table("intake_rejections")
CALL_LOGS = _table("call_logs")
CALLBACKS = _table("callbacks")
HEALTH_ANSWERS = _table("health_answers")
VECTORS = _table("vectors")
USERS = _table("users")
OUTBOUND_CALLS = _table("outbound_calls")
CALL_EVENTS = _table("call_events")
SCHEDULER_SLOTS = _table("scheduler_slots")
AUDIT_LOG = _table("audit_log")
ADMIN_TOKENS = _table("admin_tokens")
CONSOLE_SESSIONS = _table("console_sessions")
