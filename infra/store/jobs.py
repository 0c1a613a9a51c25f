"""The job ledger (inbox) and step progress, in the SQL store.

``SqlJobLedger`` records every accepted request before it is answered, once per
(source, external id), even under concurrent duplicate deliveries: the insert is an
``ON CONFLICT DO NOTHING`` on that unique key. The relay publishes what is still pending.

``SqlJobProgress`` is written by the actor shell. Job status moves
queued → processing → completed | failed; a completed job never moves back (a duplicate
delivery after completion changes nothing), while a failed job that is replayed from the
dead-letter queue becomes processing again and may complete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from infra.store.engine import PRESERVE_ROWCOUNT, dialect_insert, transaction
from infra.store.records import AcceptedJob, AgentKind, PendingJob
from infra.store.tables import INTAKE_REJECTIONS, JOB_STEPS, JOBS


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class SqlJobLedger:
    """``JobLedger`` on the SQL store.

    Args:
        engine: The store's engine.
        clock: Returns the current aware time (tests pass a fixed clock).
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

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

        Raises:
            PermanentError: The tenant does not exist.
            TransientError: The database is unavailable.
        """
        now = self._clock()
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, JOBS).values(
                id=job_id,
                source=source,
                external_id=external_id,
                tenant_id=tenant_id,
                kind=kind,
                contract=contract,
                payload=payload,
                correlation_id=correlation_id,
                status="queued",
                created_at=now,
                updated_at=now,
            )
            inserted = conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["source", "external_id"]),
                execution_options=PRESERVE_ROWCOUNT,
            ).rowcount
            row = conn.execute(
                sa.select(JOBS.c.id, JOBS.c.published_at).where(
                    JOBS.c.source == source, JOBS.c.external_id == external_id
                )
            ).one()
        return AcceptedJob(
            job_id=row.id, created=inserted == 1, published=row.published_at is not None
        )

    def mark_published(self, job_id: str) -> None:
        """Record that the job's first message is on the bus (idempotent)."""
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.published_at.is_(None))
                .values(published_at=self._clock())
            )

    def pending(self, *, min_age_s: float, limit: int) -> list[PendingJob]:
        """Accepted jobs not yet published, oldest first, accepted ``min_age_s`` ago.

        Jobs a worker already started are skipped: their message evidently reached the
        bus even if ``mark_published`` did not run.
        """
        cutoff = self._clock() - timedelta(seconds=min_age_s)
        query = (
            sa.select(JOBS)
            .where(
                JOBS.c.published_at.is_(None),
                JOBS.c.status == "queued",
                JOBS.c.created_at <= cutoff,
            )
            .order_by(JOBS.c.created_at, JOBS.c.id)
            .limit(limit)
        )
        with transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [
            PendingJob(
                job_id=row.id,
                contract=row.contract,
                payload=row.payload,
                correlation_id=row.correlation_id,
                tenant_id=row.tenant_id,
                accepted_at=row.created_at,
            )
            for row in rows
        ]

    def record_rejection(
        self, *, source: str, external_id: str | None, reason: str, payload: bytes
    ) -> None:
        """Keep a request that was authenticated but could not be accepted.

        The body is stored as text; bytes that are not UTF-8 are replaced.
        """
        with transaction(self._engine) as conn:
            conn.execute(
                sa.insert(INTAKE_REJECTIONS).values(
                    source=source,
                    external_id=external_id,
                    reason=reason,
                    payload=payload.decode("utf-8", errors="replace"),
                    created_at=self._clock(),
                )
            )


class SqlJobProgress:
    """``JobProgress`` on the SQL store.

    Progress of a job that is not in the ledger (a message published by another service
    without an inbox row) is not recorded: bookkeeping must never fail the step itself.

    Args:
        engine: The store's engine.
        clock: Returns the current aware time.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def step_started(self, job_id: str, step: str) -> None:
        """Mark the step processing and count an attempt; the job becomes processing."""
        now = self._clock()
        with transaction(self._engine) as conn:
            if not _touch_job(conn, job_id, now, status="processing", error=None):
                return
            stmt = dialect_insert(conn, JOB_STEPS).values(
                job_id=job_id,
                name=step,
                status="processing",
                attempts=1,
                started_at=now,
                updated_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["job_id", "name"],
                    set_={
                        "status": "processing",
                        "attempts": JOB_STEPS.c.attempts + 1,
                        "updated_at": now,
                    },
                )
            )

    def step_succeeded(self, job_id: str, step: str, *, final: bool) -> None:
        """Mark the step completed (error cleared); ``final`` completes the job too."""
        now = self._clock()
        with transaction(self._engine) as conn:
            if not _job_exists(conn, job_id):
                return
            _upsert_step(conn, job_id, step, now, status="completed", error=None)
            if final:
                conn.execute(
                    sa.update(JOBS)
                    .where(JOBS.c.id == job_id)
                    .values(status="completed", error=None, updated_at=now)
                )

    def step_failed(self, job_id: str, step: str, *, error: str, dead: bool) -> None:
        """Record an error: the step is retrying, or (``dead``) it and the job failed."""
        now = self._clock()
        with transaction(self._engine) as conn:
            if not _job_exists(conn, job_id):
                return
            _upsert_step(
                conn, job_id, step, now, status="failed" if dead else "retrying", error=error
            )
            if dead:
                _touch_job(conn, job_id, now, status="failed", error=error)


def _job_exists(conn: sa.Connection, job_id: str) -> bool:
    return conn.execute(sa.select(JOBS.c.id).where(JOBS.c.id == job_id)).first() is not None


def _touch_job(
    conn: sa.Connection, job_id: str, now: datetime, *, status: str, error: str | None
) -> bool:
    """Set the job's status unless it completed; return whether the job exists."""
    conn.execute(
        sa.update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status != "completed")
        .values(status=status, error=error, updated_at=now)
    )
    return _job_exists(conn, job_id)


def _upsert_step(
    conn: sa.Connection, job_id: str, step: str, now: datetime, *, status: str, error: str | None
) -> None:
    # A step that reports before it was started (shell restarted between the two)
    # still gets a row, counted as one attempt.
    stmt = dialect_insert(conn, JOB_STEPS).values(
        job_id=job_id,
        name=step,
        status=status,
        attempts=1,
        error=error,
        started_at=now,
        updated_at=now,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["job_id", "name"],
            set_={"status": status, "error": error, "updated_at": now},
        )
    )
