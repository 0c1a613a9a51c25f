"""The job ledger (inbox), in the SQL store.

``SqlJobLedger`` records every accepted request before it is answered, once per dedupe
key (source, tenant, external id), even under concurrent duplicate deliveries: the
insert is an ``ON CONFLICT DO NOTHING`` on that key. The same transaction records the
job's first message as ``queued``, so progress counts it from the start.

The relay publishes what intake could not (``pending``); the stall tick re-drives
published jobs that stopped moving (``stalled``, ``mark_redriven``, ``fail_stalled``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from infra.store.engine import PRESERVE_ROWCOUNT, dialect_insert, transaction
from infra.store.records import (
    AcceptedJob,
    InboxEntry,
    MessageRef,
    MessageStatus,
    PendingJob,
    RelayBacklog,
    StalledJob,
)
from infra.store.tables import INTAKE_REJECTIONS, JOB_MESSAGES, JOBS


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def message_row(
    job_id: str,
    message: MessageRef,
    now: datetime,
    *,
    status: MessageStatus,
    attempts: int,
    parent_key: str | None = None,
    started_at: datetime | None = None,
    error: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, object]:
    """The values of a job's message row (intake and progress both record messages)."""
    return {
        "job_id": job_id,
        "key": message.key,
        "name": message.step,
        "position": message.position,
        "parent_key": parent_key,
        "status": status,
        "attempts": attempts,
        "error": error,
        "dead_letter_id": dead_letter_id,
        "started_at": started_at,
        "updated_at": now,
    }


INTAKE_STEP = "intake"
"""The failed step of a job whose first message could not be published (failed at intake)."""


class SqlJobLedger:
    """``JobLedger`` on the SQL store.

    Args:
        engine: The store's engine.
        clock: Returns the current aware time (tests pass a fixed clock).
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def accept(self, entry: InboxEntry) -> AcceptedJob:
        """Record a request once per dedupe key, with its first message queued.

        A second call with the same key changes nothing and returns the first job's id
        with ``created=False`` (and the first request's hash).

        Raises:
            PermanentError: The tenant does not exist.
            TransientError: The database is unavailable.
        """
        now = self._clock()
        contract = entry.contract
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, JOBS).values(
                id=contract.job_id,
                source=entry.source,
                external_id=entry.external_id,
                dedupe_key=entry.dedupe_key,
                tenant_id=entry.tenant_id,
                kind=entry.kind,
                contract=type(contract).__name__,
                payload=contract.model_dump(mode="json"),
                correlation_id=contract.correlation_id,
                request_hash=entry.request_hash,
                status="queued",
                messages_total=1,
                created_at=now,
                updated_at=now,
            )
            inserted = conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]),
                execution_options=PRESERVE_ROWCOUNT,
            ).rowcount
            if inserted == 1:
                first = MessageRef(contract.idempotency_key, contract.route.actor, position=0)
                conn.execute(
                    sa.insert(JOB_MESSAGES),
                    [message_row(contract.job_id, first, now, status="queued", attempts=0)],
                )
            row = conn.execute(
                sa.select(JOBS.c.id, JOBS.c.published_at, JOBS.c.request_hash).where(
                    JOBS.c.dedupe_key == entry.dedupe_key
                )
            ).one()
        return AcceptedJob(
            job_id=row.id,
            created=inserted == 1,
            published=row.published_at is not None,
            request_hash=row.request_hash,
        )

    def mark_published(self, *job_ids: str) -> None:
        """Record that these jobs' first messages are on the bus (idempotent, one commit)."""
        if not job_ids:
            return
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(JOBS)
                .where(JOBS.c.id.in_(job_ids), JOBS.c.published_at.is_(None))
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

    def relay_backlog(self) -> RelayBacklog:
        """How many accepted jobs ``pending`` would offer at any age, and the oldest's age.

        One indexed read (``published_at``), cheap enough for every metrics scrape.
        """
        query = sa.select(sa.func.count(), sa.func.min(JOBS.c.created_at)).where(
            JOBS.c.published_at.is_(None), JOBS.c.status == "queued"
        )
        with transaction(self._engine) as conn:
            count, oldest = conn.execute(query).one()
        return RelayBacklog(jobs=int(count), oldest_accepted_at=oldest)

    def stalled(self, *, idle_s: float, limit: int) -> list[StalledJob]:
        """Published, unfinished jobs whose last progress is older than ``idle_s``.

        Oldest first. Every progress write touches a job's ``updated_at``, and so does
        a re-drive, so a job is offered again only after another idle period.
        """
        cutoff = self._clock() - timedelta(seconds=idle_s)
        query = (
            sa.select(JOBS)
            .where(
                JOBS.c.status.in_(("queued", "processing")),
                JOBS.c.published_at.is_not(None),
                JOBS.c.updated_at <= cutoff,
            )
            .order_by(JOBS.c.updated_at, JOBS.c.id)
            .limit(limit)
        )
        with transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [
            StalledJob(
                job_id=row.id,
                contract=row.contract,
                payload=row.payload,
                correlation_id=row.correlation_id,
                redrives=row.redrives,
                updated_at=row.updated_at,
            )
            for row in rows
        ]

    def mark_redriven(self, job_id: str) -> None:
        """Count a re-drive of the job and restart its idle clock."""
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(JOBS)
                .where(JOBS.c.id == job_id)
                .values(redrives=JOBS.c.redrives + 1, updated_at=self._clock())
            )

    def fail_stalled(self, job_id: str, *, error: str) -> None:
        """Give up on a job that stayed stalled through every re-drive it was allowed."""
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.status.in_(("queued", "processing")))
                .values(status="failed", error=error, error_step=None, updated_at=self._clock())
            )

    def fail_at_intake(self, job_id: str, *, error: str) -> bool:
        """Fail a pending job whose first message no longer validates: failed at intake.

        Its step is ``intake``; the relay never picks it up again.

        Returns:
            False when the job was published or started meanwhile (nothing changes).
        """
        with transaction(self._engine) as conn:
            failed = conn.execute(
                sa.update(JOBS)
                .where(
                    JOBS.c.id == job_id,
                    JOBS.c.status == "queued",
                    JOBS.c.published_at.is_(None),
                )
                .values(
                    status="failed",
                    error=error,
                    error_step=INTAKE_STEP,
                    updated_at=self._clock(),
                ),
                execution_options=PRESERVE_ROWCOUNT,
            ).rowcount
        return bool(failed)

    def record_rejection(
        self, *, source: str, external_id: str | None, reason: str, payload: bytes
    ) -> None:
        """Keep a request that was authenticated but could not be accepted.

        The body is stored as text: bytes that are not UTF-8, and NUL (which PostgreSQL
        cannot store in text), are replaced by U+FFFD.
        """
        text = payload.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        with transaction(self._engine) as conn:
            conn.execute(
                sa.insert(INTAKE_REJECTIONS).values(
                    source=source,
                    external_id=_storable(external_id),
                    reason=_storable(reason),
                    payload=text,
                    created_at=self._clock(),
                )
            )


def _storable(value: str | None) -> str | None:
    """``value`` with NUL and lone surrogates replaced, for free-text columns."""
    if value is None:
        return None
    cleaned = value.replace("\x00", "\ufffd")
    return cleaned.encode("utf-8", errors="replace").decode("utf-8")
