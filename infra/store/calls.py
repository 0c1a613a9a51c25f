"""Calls in the SQL store: the pipeline's writes and the calls API's reads.

``SqlCallStore`` implements the step ports ``CallRecords``, ``CallbackBook`` and
``HealthRecords`` of ``actors.ports`` structurally (infra never imports actors). Every
row is keyed by (tenant, conversation id), and every write is an upsert or an ``ON
CONFLICT DO NOTHING`` on that key, so a replayed step changes nothing and two tenants
whose platforms reuse a conversation id never touch each other's rows.
``SqlCallQueries`` assembles the ``CallView`` of the calls API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from contracts import CallAnalysis, HealthAnswer
from contracts.values import CallLogEntry
from infra.store.engine import PRESERVE_ROWCOUNT, dialect_insert, transaction
from infra.store.job_views import step_records
from infra.store.jobs import utc_now
from infra.store.records import AgentKind, CallbackRecord, CallView, JobStatus
from infra.store.tables import CALL_LOGS, CALLBACKS, HEALTH_ANSWERS, JOBS, TENANTS

CALL_KINDS: dict[str, AgentKind] = {"post_call": "general", "health_check": "health_check"}
"""Job kinds that are calls, and how the call view names them."""


class SqlCallStore:
    """Call logs, due callbacks and health answers (the pipeline's write side).

    Raises (every method):
        TransientError: The database is unavailable.
        PermanentError: A write was rejected (e.g. the tenant does not exist).
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def get_call_log(self, tenant_id: str, conversation_id: str) -> CallLogEntry | None:
        """Return the call log, or None when the call was not persisted yet."""
        with transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(CALL_LOGS).where(
                    CALL_LOGS.c.tenant_id == tenant_id,
                    CALL_LOGS.c.conversation_id == conversation_id,
                )
            ).first()
        if row is None:
            return None
        return CallLogEntry(
            tenant_id=row.tenant_id,
            conversation_id=row.conversation_id,
            agent_id=row.agent_id,
            job_id=row.job_id,
            analysis=CallAnalysis.model_validate(row.analysis),
            duration_secs=row.duration_secs,
            call_status=row.call_status,
            started_at=row.started_at,
        )

    def save_call_log(self, entry: CallLogEntry) -> None:
        """Insert or update the call log of the entry's tenant and conversation (idempotent)."""
        now = self._clock()
        values: dict[str, Any] = {
            "agent_id": entry.agent_id,
            "job_id": entry.job_id,
            "summary": entry.analysis.summary,
            "topics": list(entry.analysis.topics),
            "sentiment": entry.analysis.sentiment,
            "analysis": entry.analysis.model_dump(mode="json"),
            "duration_secs": entry.duration_secs,
            "call_status": entry.call_status,
            "started_at": entry.started_at,
            "updated_at": now,
        }
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, CALL_LOGS).values(
                tenant_id=entry.tenant_id,
                conversation_id=entry.conversation_id,
                created_at=now,
                **values,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "conversation_id"], set_=values
                )
            )

    def schedule_callback(
        self,
        *,
        tenant_id: str,
        conversation_id: str,
        due_at: datetime,
        reason: str,
        phone: str | None = None,
        agent_id: str | None = None,
    ) -> bool:
        """Record a callback due at ``due_at`` with status ``scheduled``.

        ``phone`` is the caller's number; without one the callback cannot be placed.

        Returns:
            False when this tenant's conversation already had one (nothing changes).
        """
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, CALLBACKS).values(
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                due_at=due_at,
                reason=reason,
                status="scheduled",
                phone=phone,
                agent_id=agent_id,
                created_at=self._clock(),
            )
            result = conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["tenant_id", "conversation_id"]),
                execution_options=PRESERVE_ROWCOUNT,
            )
        return result.rowcount == 1

    def has_health_answers(self, tenant_id: str, conversation_id: str) -> bool:
        """Whether answers were already persisted for this conversation."""
        query = sa.select(HEALTH_ANSWERS.c.question).where(
            HEALTH_ANSWERS.c.tenant_id == tenant_id,
            HEALTH_ANSWERS.c.conversation_id == conversation_id,
        )
        with transaction(self._engine) as conn:
            return conn.execute(query.limit(1)).first() is not None

    def save_health_answers(
        self, *, tenant_id: str, conversation_id: str, answers: Sequence[HealthAnswer]
    ) -> None:
        """Insert or update the answers, keyed by tenant, conversation and question.

        When one batch repeats a question, its last answer wins.
        """
        # One statement may not touch a row twice (PostgreSQL refuses): dedupe first.
        by_question = {answer.question: answer for answer in answers}
        if not by_question:
            return
        now = self._clock()
        rows = [
            {
                "conversation_id": conversation_id,
                "question": a.question,
                "tenant_id": tenant_id,
                "answer": a.answer,
                "value": a.value,
                "unit": a.unit,
                "created_at": now,
            }
            for a in by_question.values()
        ]
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, HEALTH_ANSWERS)
            upsert = stmt.on_conflict_do_update(
                index_elements=["tenant_id", "conversation_id", "question"],
                set_={
                    "answer": stmt.excluded.answer,
                    "value": stmt.excluded.value,
                    "unit": stmt.excluded.unit,
                },
            )
            conn.execute(upsert, rows)


class SqlCallQueries:
    """``CallQueries``: the read side of the calls API."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def find_calls(self, conversation_id: str, *, tenant_id: str | None) -> list[CallView]:
        """The call in every tenant that has it (one with ``tenant_id``), by tenant name.

        Conversation ids are the voice platform's, so two tenants may share one; the
        admin's read then gets several views and must pick a tenant.
        """
        with transaction(self._engine) as conn:
            jobs = _latest_call_jobs(conn, [conversation_id], tenant_id)
            views = [_call_view(conn, job) for job in jobs]
        return sorted(views, key=lambda view: view.tenant_name)

    def call_views(self, conversation_ids: Sequence[str], *, tenant_id: str) -> list[CallView]:
        """Several calls of one tenant, in the order given (unknown ids skipped)."""
        with transaction(self._engine) as conn:
            jobs = {
                j.correlation_id: j for j in _latest_call_jobs(conn, conversation_ids, tenant_id)
            }
            return [_call_view(conn, jobs[c]) for c in conversation_ids if c in jobs]


def _latest_call_jobs(
    conn: sa.Connection, conversation_ids: Sequence[str], tenant_id: str | None
) -> list[sa.Row[Any]]:
    """The newest call job per (tenant, conversation) among ``conversation_ids``."""
    if not conversation_ids:
        return []
    query = (
        sa.select(JOBS, TENANTS.c.name.label("tenant_name"))
        .join(TENANTS, TENANTS.c.id == JOBS.c.tenant_id)
        .where(
            JOBS.c.correlation_id.in_(list(conversation_ids)),
            JOBS.c.kind.in_(list(CALL_KINDS)),
        )
        # A redelivery under another Idempotency-Key makes a second job; the newest
        # describes the call best.
        .order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc())
    )
    if tenant_id is not None:
        query = query.where(JOBS.c.tenant_id == tenant_id)
    latest: dict[tuple[str, str], sa.Row[Any]] = {}
    for job in conn.execute(query).all():
        latest.setdefault((job.tenant_id, job.correlation_id), job)
    return list(latest.values())


def _call_view(conn: sa.Connection, job: sa.Row[Any]) -> CallView:
    tenant_id, conversation_id = job.tenant_id, job.correlation_id
    log = conn.execute(
        sa.select(CALL_LOGS.c.analysis, CALL_LOGS.c.duration_secs).where(
            CALL_LOGS.c.tenant_id == tenant_id, CALL_LOGS.c.conversation_id == conversation_id
        )
    ).first()
    duration = log.duration_secs if log is not None else job.payload.get("duration_secs")
    return CallView(
        conversation_id=conversation_id,
        job_id=job.id,
        tenant_id=tenant_id,
        tenant_name=job.tenant_name,
        kind=CALL_KINDS[job.kind],
        status=cast(JobStatus, job.status),
        steps=step_records(conn, job.id),
        analysis=CallAnalysis.model_validate(log.analysis) if log is not None else None,
        duration_secs=duration if isinstance(duration, int) else None,
        callback=_callback(conn, tenant_id, conversation_id),
        health_answers=_health_answers(conn, tenant_id, conversation_id),
    )


def _callback(conn: sa.Connection, tenant_id: str, conversation_id: str) -> CallbackRecord | None:
    row = conn.execute(
        sa.select(CALLBACKS).where(
            CALLBACKS.c.tenant_id == tenant_id, CALLBACKS.c.conversation_id == conversation_id
        )
    ).first()
    if row is None:
        return None
    return CallbackRecord(due_at=row.due_at, reason=row.reason, status=row.status)


def _health_answers(
    conn: sa.Connection, tenant_id: str, conversation_id: str
) -> list[HealthAnswer]:
    rows = conn.execute(
        sa.select(HEALTH_ANSWERS)
        .where(
            HEALTH_ANSWERS.c.tenant_id == tenant_id,
            HEALTH_ANSWERS.c.conversation_id == conversation_id,
        )
        .order_by(HEALTH_ANSWERS.c.created_at, HEALTH_ANSWERS.c.question)
    ).all()
    return [
        HealthAnswer(question=row.question, answer=row.answer, value=row.value, unit=row.unit)
        for row in rows
    ]
