"""Calls in the SQL store: the pipeline's writes and the calls API's reads.

``SqlCallStore`` implements the step ports ``CallRecords``, ``CallbackBook`` and
``HealthRecords`` of ``actors.ports`` structurally (infra never imports actors). Every
write is an upsert or an ``ON CONFLICT DO NOTHING`` on the natural key, so a replayed
step changes nothing. ``SqlCallQueries`` assembles the ``CallView`` of the calls API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from contracts import CallAnalysis, HealthAnswer
from contracts.values import CallLogEntry
from infra.store.engine import PRESERVE_ROWCOUNT, dialect_insert, transaction
from infra.store.jobs import utc_now
from infra.store.records import (
    AgentKind,
    CallbackRecord,
    CallView,
    JobStatus,
    StepRecord,
    StepStatus,
)
from infra.store.tables import CALL_LOGS, CALLBACKS, HEALTH_ANSWERS, JOB_STEPS, JOBS, TENANTS

PIPELINE_STEPS = (
    "fetch_transcript",
    "analyze_call",
    "index_call",
    "persist_call",
    "schedule_callback",
    "record_health_check",
)
"""Step (actor) names in pipeline order; a call view lists its steps in this order."""


class SqlCallStore:
    """Call logs, due callbacks and health answers (the pipeline's write side).

    Raises (every method):
        TransientError: The database is unavailable.
        PermanentError: A write was rejected (e.g. the tenant does not exist).
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def get_call_log(self, conversation_id: str) -> CallLogEntry | None:
        """Return the call log, or None when the call was not persisted yet."""
        with transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(CALL_LOGS).where(CALL_LOGS.c.conversation_id == conversation_id)
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
        """Insert or update the call log of ``entry.conversation_id`` (idempotent)."""
        now = self._clock()
        values: dict[str, Any] = {
            "tenant_id": entry.tenant_id,
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
                conversation_id=entry.conversation_id, created_at=now, **values
            )
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["conversation_id"], set_=values)
            )

    def schedule_callback(
        self, *, tenant_id: str, conversation_id: str, due_at: datetime, reason: str
    ) -> bool:
        """Record a callback due at ``due_at`` with status ``scheduled``.

        Returns:
            False when this conversation already had one (nothing changes).
        """
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, CALLBACKS).values(
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                due_at=due_at,
                reason=reason,
                status="scheduled",
                created_at=self._clock(),
            )
            result = conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["conversation_id"]),
                execution_options=PRESERVE_ROWCOUNT,
            )
        return result.rowcount == 1

    def has_health_answers(self, conversation_id: str) -> bool:
        """Whether answers were already persisted for this conversation."""
        query = sa.select(HEALTH_ANSWERS.c.question).where(
            HEALTH_ANSWERS.c.conversation_id == conversation_id
        )
        with transaction(self._engine) as conn:
            return conn.execute(query.limit(1)).first() is not None

    def save_health_answers(
        self, *, tenant_id: str, conversation_id: str, answers: Sequence[HealthAnswer]
    ) -> None:
        """Insert or update the answers, keyed by conversation and question (idempotent).

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
                index_elements=["conversation_id", "question"],
                set_={
                    "tenant_id": stmt.excluded.tenant_id,
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

    def call_view(self, conversation_id: str, *, tenant_id: str | None) -> CallView | None:
        """The call, or None if unknown or (with ``tenant_id``) another tenant's."""
        with transaction(self._engine) as conn:
            return _call_view(conn, conversation_id, tenant_id)

    def call_views(self, conversation_ids: Sequence[str], *, tenant_id: str) -> list[CallView]:
        """Several calls of one tenant, in the order given (unknown ids skipped)."""
        views: list[CallView] = []
        with transaction(self._engine) as conn:
            for conversation_id in conversation_ids:
                view = _call_view(conn, conversation_id, tenant_id)
                if view is not None:
                    views.append(view)
        return views


def _call_view(conn: sa.Connection, conversation_id: str, tenant_id: str | None) -> CallView | None:
    # The job of a call is the ledger row correlated with it; a redelivery under a new
    # external id can make several, and the latest describes the call best.
    query = (
        sa.select(JOBS, TENANTS.c.name.label("tenant_name"))
        .join(TENANTS, TENANTS.c.id == JOBS.c.tenant_id)
        .where(JOBS.c.correlation_id == conversation_id)
        .order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc())
        .limit(1)
    )
    if tenant_id is not None:
        query = query.where(JOBS.c.tenant_id == tenant_id)
    job = conn.execute(query).first()
    if job is None:
        return None
    log = conn.execute(
        sa.select(CALL_LOGS.c.analysis, CALL_LOGS.c.duration_secs).where(
            CALL_LOGS.c.conversation_id == conversation_id
        )
    ).first()
    duration = log.duration_secs if log is not None else job.payload.get("duration_secs")
    return CallView(
        conversation_id=conversation_id,
        job_id=job.id,
        tenant_id=job.tenant_id,
        tenant_name=job.tenant_name,
        kind=cast(AgentKind, job.kind),
        status=cast(JobStatus, job.status),
        steps=_steps(conn, job.id),
        analysis=CallAnalysis.model_validate(log.analysis) if log is not None else None,
        duration_secs=duration if isinstance(duration, int) else None,
        callback=_callback(conn, conversation_id),
        health_answers=_health_answers(conn, conversation_id),
    )


def _step_order(name: str) -> tuple[int, str]:
    known = name in PIPELINE_STEPS
    return (PIPELINE_STEPS.index(name) if known else len(PIPELINE_STEPS), name)


def _steps(conn: sa.Connection, job_id: str) -> list[StepRecord]:
    rows = conn.execute(sa.select(JOB_STEPS).where(JOB_STEPS.c.job_id == job_id)).all()
    records = [
        StepRecord(
            name=row.name,
            status=cast(StepStatus, row.status),
            attempts=row.attempts,
            error=row.error,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return sorted(records, key=lambda record: _step_order(record.name))


def _callback(conn: sa.Connection, conversation_id: str) -> CallbackRecord | None:
    row = conn.execute(
        sa.select(CALLBACKS).where(CALLBACKS.c.conversation_id == conversation_id)
    ).first()
    if row is None:
        return None
    return CallbackRecord(due_at=row.due_at, reason=row.reason, status=row.status)


def _health_answers(conn: sa.Connection, conversation_id: str) -> list[HealthAnswer]:
    rows = conn.execute(
        sa.select(HEALTH_ANSWERS)
        .where(HEALTH_ANSWERS.c.conversation_id == conversation_id)
        .order_by(HEALTH_ANSWERS.c.created_at, HEALTH_ANSWERS.c.question)
    ).all()
    return [
        HealthAnswer(question=row.question, answer=row.answer, value=row.value, unit=row.unit)
        for row in rows
    ]
