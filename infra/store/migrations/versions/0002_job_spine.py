"""job spine: per-message progress, tenant-scoped dedupe and call rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:30:00

- ``job_steps`` (one row per job and step name) becomes ``job_messages`` (one row per
  job and message idempotency key), so a step that fans out keeps a row per message;
  existing rows are copied under the keys their messages carry now, so a job running
  during the upgrade completes normally.
- ``jobs`` gains the per-message counters, the failure's step and dead letter, the
  re-drive count, the request hash of ``Idempotency-Key`` requests and ``dedupe_key``
  (source/tenant/external id) in place of the (source, external id) constraint, which
  let one tenant's webhook be taken for another's duplicate; ``tenant_id`` becomes
  optional (scheduler ticks have none); kind ``general`` is renamed ``post_call``.
- ``call_logs``, ``callbacks`` and ``health_answers`` are keyed by (tenant,
  conversation) instead of the conversation alone.

SQLite rebuilds a table to change its keys (batch mode). Nothing may reference a table
while it is rebuilt (foreign keys are enforced), so ``job_messages`` gets its foreign
key to ``jobs`` last.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POST_CALL = (
    ("fetch_transcript", "post-call"),
    ("analyze_call", "call-transcribed"),
    ("index_call", "call-analyzed"),
    ("persist_call", "call-indexed"),
    ("schedule_callback", "callback"),
)
"""The post-call steps as 0001 knew them, with the key prefix of the message each
consumes (``<prefix>:<tenant>:<conversation>``), in pipeline order."""

_HEALTH_CHECK = ("record_health_check", "health-check")


def _string() -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString()


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Upgrade schema."""
    _messages_from_steps()
    _jobs()
    _rekey_by_tenant("call_logs", ["tenant_id", "conversation_id"])
    op.drop_index("ix_call_logs_tenant_id", table_name="call_logs", if_exists=True)
    _rekey_by_tenant("health_answers", ["tenant_id", "conversation_id", "question"])
    with op.batch_alter_table("callbacks", recreate="auto") as batch:
        batch.drop_constraint("uq_callbacks_conversation_id", type_="unique")
        batch.create_unique_constraint(
            "uq_callbacks_tenant_conversation", ["tenant_id", "conversation_id"]
        )
    with op.batch_alter_table("job_messages", recreate="auto") as batch:
        batch.create_foreign_key("fk_job_messages_job_id", "jobs", ["job_id"], ["id"])


def _messages_from_steps() -> None:
    op.create_table(
        "job_messages",
        sa.Column("job_id", _string(), nullable=False),
        sa.Column("key", _string(), nullable=False),
        sa.Column("name", _string(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("parent_key", _string(), nullable=True),
        sa.Column("status", _string(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("dead_letter_id", _string(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "key"),
    )
    _copy_steps_as_messages()
    op.drop_table("job_steps")


def _message_key(step: str, tenant_id: str, conversation_id: str) -> tuple[str, int, str | None]:
    """The copied row's key, position and parent key, as the shell now records them."""
    if step == _HEALTH_CHECK[0]:
        return f"{_HEALTH_CHECK[1]}:{tenant_id}:{conversation_id}", 0, None
    names = [name for name, _ in _POST_CALL]
    if step not in names:
        return step, 0, None
    position = names.index(step)
    key = f"{_POST_CALL[position][1]}:{tenant_id}:{conversation_id}"
    parent = (
        f"{_POST_CALL[position - 1][1]}:{tenant_id}:{conversation_id}" if position else None
    )
    return key, position, parent


def _copy_steps_as_messages() -> None:
    """Copy 0001's step rows under the keys the shell reports progress with now.

    A job still running at the upgrade then completes normally; a queued job that had
    no step row yet gets its first message, queued, as intake records it now.
    """
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        *(sa.column(c) for c in ("id", "tenant_id", "correlation_id", "kind", "status")),
        sa.column("updated_at"),
    )
    steps = sa.table(
        "job_steps",
        *(sa.column(c) for c in ("job_id", "name", "status", "attempts", "error")),
        sa.column("started_at"),
        sa.column("updated_at"),
    )
    messages = sa.table(
        "job_messages",
        *(
            sa.column(c)
            for c in (
                "job_id", "key", "name", "position", "parent_key", "status", "attempts",
                "error", "started_at", "updated_at",
            )
        ),
    )
    rows = conn.execute(
        sa.select(steps, jobs.c.tenant_id, jobs.c.correlation_id).join(
            jobs, jobs.c.id == steps.c.job_id
        )
    ).all()
    copied = []
    for row in rows:
        key, position, parent = _message_key(row.name, row.tenant_id, row.correlation_id)
        copied.append(
            {
                "job_id": row.job_id, "key": key, "name": row.name, "position": position,
                "parent_key": parent, "status": row.status, "attempts": row.attempts,
                "error": row.error, "started_at": row.started_at, "updated_at": row.updated_at,
            }
        )
    stepless = conn.execute(
        sa.select(jobs).where(
            jobs.c.status == "queued", ~sa.exists().where(steps.c.job_id == jobs.c.id)
        )
    ).all()
    for job in stepless:
        step = _HEALTH_CHECK[0] if job.kind == "health_check" else _POST_CALL[0][0]
        key, position, _ = _message_key(step, job.tenant_id, job.correlation_id)
        copied.append(
            {
                "job_id": job.id, "key": key, "name": step, "position": position,
                "parent_key": None, "status": "queued", "attempts": 0, "error": None,
                "started_at": None, "updated_at": job.updated_at,
            }
        )
    if copied:
        conn.execute(sa.insert(messages), copied)


def _jobs() -> None:
    with op.batch_alter_table("jobs", recreate="auto") as batch:
        batch.drop_constraint("uq_jobs_source_external_id", type_="unique")
        batch.alter_column("tenant_id", existing_type=_string(), nullable=True)
        batch.add_column(sa.Column("dedupe_key", _string(), nullable=True))
        batch.add_column(sa.Column("request_hash", _string(), nullable=True))
        batch.add_column(sa.Column("error_step", _string(), nullable=True))
        batch.add_column(sa.Column("dead_letter_id", _string(), nullable=True))
        for counter in ("messages_total", "messages_completed", "messages_failed", "redrives"):
            batch.add_column(sa.Column(counter, sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE jobs SET dedupe_key = source || '/' || tenant_id || '/' || external_id, "
        "kind = CASE kind WHEN 'general' THEN 'post_call' ELSE kind END"
    )
    # Counters of the copied rows, so old jobs read like new ones.
    for counter, condition in (
        ("messages_total", "1 = 1"),
        ("messages_completed", "m.status = 'completed'"),
        ("messages_failed", "m.status = 'failed'"),
    ):
        op.execute(
            f"UPDATE jobs SET {counter} = (SELECT count(*) FROM job_messages m "  # noqa: S608
            f"WHERE m.job_id = jobs.id AND {condition})"
        )
    with op.batch_alter_table("jobs", recreate="auto") as batch:
        batch.alter_column("dedupe_key", existing_type=_string(), nullable=False)
        batch.create_unique_constraint("uq_jobs_dedupe_key", ["dedupe_key"])
        batch.create_index("ix_jobs_status_updated_at", ["status", "updated_at"])


def _rekey_by_tenant(table: str, columns: list[str]) -> None:
    """Replace ``table``'s primary key by ``columns``."""
    if _is_postgres():
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, columns)
        return
    # Rebuilding with the key columns reflected as primary: the copy gets the new key.
    with op.batch_alter_table(
        table,
        recreate="always",
        reflect_args=[
            sa.Column("tenant_id", _string(), sa.ForeignKey("tenants.id"), primary_key=True),
            *(sa.Column(c, _string(), primary_key=True) for c in columns if c != "tenant_id"),
        ],
    ):
        pass


def downgrade() -> None:
    """Not supported: 0001 cannot hold two tenants' rows for one conversation."""
    raise NotImplementedError("0002 cannot be downgraded; restore a backup instead")
