"""Job progress, recorded per message, in the SQL store.

Every message of a job has a row in ``job_messages`` keyed by its idempotency key. The
actor shell reports a message started, succeeded (with the messages it published, the
children, recorded ``queued`` in the same transaction) or failed (retrying, or dead).
Each report updates the job's counters and derives its status from them:

- ``failed`` while any message is dead-lettered (naming the step and the dead letter);
- ``completed`` when every message it has is completed;
- ``queued`` until a first message starts, ``processing`` after.

So a fan-out (one tick → N users) completes only when the last child does, and the
first child to finish changes nothing but the counts.

Concurrency: each report first updates the job's row, which takes its row lock on
PostgreSQL and the write lock on SQLite; reports on one job are therefore serialised,
and each one reads counters no other report is changing. A completed message stays
completed when it is delivered again (a redelivery is a no-op for the idempotent step);
a failed one becomes processing when it runs again (a replayed dead letter).

Progress of a job that is not in the ledger (a message another service published
without an inbox row) is not recorded: bookkeeping never fails the step itself.

A ``JobObserver`` hears of each completion once it is committed, with the job's time
since it was accepted: reports on a job are serialised, so exactly one report sees the
job become ``completed`` (again after a replayed dead letter succeeds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from infra.store.engine import transaction
from infra.store.jobs import message_row, utc_now
from infra.store.records import JobStatus, MessageRef, MessageStatus
from infra.store.tables import JOB_MESSAGES, JOBS

CHUNK = 500
"""Keys per ``IN (...)`` list: well under SQLite's bound-parameter limit."""


@dataclass
class _Counts:
    total: int
    completed: int
    failed: int

    def move(self, old: str | None, new: str) -> None:
        if old is None:
            self.total += 1
        for status, delta in ((old, -1), (new, 1)):
            if status == "completed":
                self.completed += delta
            elif status == "failed":
                self.failed += delta


def derive_status(current: str, counts: _Counts, *, started: bool) -> JobStatus:
    """A job's status from its message counts (see the module docstring)."""
    if counts.failed:
        return "failed"
    if counts.total and counts.completed == counts.total:
        return "completed"
    if current == "queued" and not started:
        return "queued"
    return "processing"


@dataclass(frozen=True)
class _Failure:
    step: str
    error: str
    dead_letter_id: str | None


class JobObserver(Protocol):
    """Hears of jobs completing (``infra.metrics.work.WorkMetrics`` in the worker)."""

    def job_completed(self, pipeline: str, seconds: float) -> None:
        """A job of ``pipeline`` completed ``seconds`` after it was accepted."""
        ...


class SqlJobProgress:
    """``JobProgress`` on the SQL store.

    Args:
        engine: The store's engine.
        clock: Returns the current aware time.
        observer: Told of each completion after it commits; None tells nobody.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        observer: JobObserver | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._observer = observer

    def message_started(self, job_id: str, message: MessageRef) -> None:
        """Count an attempt; the message becomes processing (unless it completed)."""
        self._report(job_id, message, "processing", started=True, attempt=True)

    def message_succeeded(
        self, job_id: str, message: MessageRef, *, children: Sequence[MessageRef] = ()
    ) -> None:
        """Complete the message and record the messages it published as queued."""
        self._report(job_id, message, "completed", children=children)

    def message_failed(
        self, job_id: str, message: MessageRef, *, error: str, dead_letter_id: str | None
    ) -> None:
        """Record an error: retrying, or (with a dead letter) failed, failing the job."""
        dead = dead_letter_id is not None
        failure = _Failure(message.step, error, dead_letter_id) if dead else None
        self._report(
            job_id, message, "failed" if dead else "retrying", error=error, failure=failure
        )

    def message_requeued(self, job_id: str, key: str) -> bool:
        """A dead-lettered message of the job is about to be replayed: it is queued again.

        The job leaves ``failed`` (it is ``processing`` while the replay runs, and
        completes when it succeeds). Called before the message goes back on its queue,
        so a replay that fails again at once is recorded after this, never undone by
        it. Returns False when the job or the message is not recorded, or the message
        had not failed (nothing changes then).
        """
        return self._move_message(job_id, key, "failed", "queued", failure=None)

    def requeue_withdrawn(
        self, job_id: str, key: str, *, step: str, error: str, dead_letter_id: str
    ) -> bool:
        """Undo ``message_requeued`` when the replay did not happen (the letter was gone).

        The message fails again with its dead letter, and so does the job, unless the
        message has moved on meanwhile (another replay of it already started).
        """
        failure = _Failure(step, error, dead_letter_id)
        return self._move_message(job_id, key, "queued", "failed", failure=failure)

    def _move_message(
        self,
        job_id: str,
        key: str,
        source: MessageStatus,
        target: MessageStatus,
        *,
        failure: _Failure | None,
    ) -> bool:
        now = self._clock()
        with transaction(self._engine) as conn:
            touched = conn.execute(
                sa.update(JOBS).where(JOBS.c.id == job_id).values(updated_at=now)
            ).rowcount
            if not touched:
                return False
            job = conn.execute(
                sa.select(
                    JOBS.c.status,
                    JOBS.c.messages_total,
                    JOBS.c.messages_completed,
                    JOBS.c.messages_failed,
                ).where(JOBS.c.id == job_id)
            ).one()
            moved = conn.execute(
                sa.update(JOB_MESSAGES)
                .where(
                    JOB_MESSAGES.c.job_id == job_id,
                    JOB_MESSAGES.c.key == key,
                    JOB_MESSAGES.c.status == source,
                )
                .values(
                    status=target,
                    dead_letter_id=failure.dead_letter_id if failure else None,
                    updated_at=now,
                    # A requeued message keeps its last error until it runs again.
                    **({"error": failure.error} if failure else {}),
                )
            ).rowcount
            if not moved:
                return False
            counts = _Counts(job.messages_total, job.messages_completed, job.messages_failed)
            counts.move(source, target)
            _write_job(conn, job_id, job.status, counts, now, started=True, failure=failure)
            return True

    def _report(
        self,
        job_id: str,
        message: MessageRef,
        status: MessageStatus,
        *,
        started: bool = False,
        attempt: bool = False,
        error: str | None = None,
        failure: _Failure | None = None,
        children: Sequence[MessageRef] = (),
    ) -> None:
        now = self._clock()
        with transaction(self._engine) as conn:
            # First a write to the job's row: it serialises every report on this job.
            touched = conn.execute(
                sa.update(JOBS).where(JOBS.c.id == job_id).values(updated_at=now)
            ).rowcount
            if not touched:
                return
            job = conn.execute(
                sa.select(
                    JOBS.c.status,
                    JOBS.c.kind,
                    JOBS.c.created_at,
                    JOBS.c.messages_total,
                    JOBS.c.messages_completed,
                    JOBS.c.messages_failed,
                ).where(JOBS.c.id == job_id)
            ).one()
            counts = _Counts(job.messages_total, job.messages_completed, job.messages_failed)
            _write_message(
                conn,
                job_id,
                message,
                now,
                counts,
                status=status,
                attempt=attempt,
                error=error,
                dead_letter_id=failure.dead_letter_id if failure else None,
            )
            _record_children(conn, job_id, children, parent=message.key, now=now, counts=counts)
            new_status = _write_job(
                conn, job_id, job.status, counts, now, started=started, failure=failure
            )
        if self._observer is not None and new_status == "completed" and job.status != "completed":
            self._observer.job_completed(job.kind, (now - job.created_at).total_seconds())


def _write_message(
    conn: sa.Connection,
    job_id: str,
    message: MessageRef,
    now: datetime,
    counts: _Counts,
    *,
    status: MessageStatus,
    attempt: bool,
    error: str | None,
    dead_letter_id: str | None,
) -> None:
    where = (JOB_MESSAGES.c.job_id == job_id, JOB_MESSAGES.c.key == message.key)
    row = conn.execute(
        sa.select(JOB_MESSAGES.c.status, JOB_MESSAGES.c.started_at).where(*where)
    ).first()
    if row is None:
        # A message reported before it was started (the shell restarted between the
        # two) still ran once.
        new_row = message_row(
            job_id,
            message,
            now,
            status=status,
            attempts=1,
            started_at=now,
            error=error,
            dead_letter_id=dead_letter_id,
        )
        conn.execute(sa.insert(JOB_MESSAGES), [new_row])
        counts.move(None, status)
        return
    new = "completed" if row.status == "completed" and status == "processing" else status
    values: dict[str, object] = {
        "status": new,
        "error": error if new != "completed" else None,
        "dead_letter_id": dead_letter_id,
        "updated_at": now,
        "started_at": row.started_at or now,
    }
    if attempt:
        values["attempts"] = JOB_MESSAGES.c.attempts + 1
    conn.execute(sa.update(JOB_MESSAGES).where(*where).values(**values))
    counts.move(row.status, new)


def _record_children(
    conn: sa.Connection,
    job_id: str,
    children: Sequence[MessageRef],
    *,
    parent: str,
    now: datetime,
    counts: _Counts,
) -> None:
    """Record the messages ``parent`` published as queued, in a few statements.

    A fan-out publishes thousands of children in one report, under the job's lock: one
    lookup and one insert per child would hold every sibling's report for seconds.
    """
    unique = list({child.key: child for child in children if child.key != parent}.values())
    if not unique:
        return
    # Every message of the job, read in one range scan of the primary key: lookups by
    # hundreds of keys at a time were planned as sequential scans once PostgreSQL
    # switched the repeated statement to a generic plan (3 s for a redelivered tick).
    wanted = {child.key for child in unique}
    known: dict[str, str | None] = {
        row.key: row.parent_key
        for row in conn.execute(
            sa.select(JOB_MESSAGES.c.key, JOB_MESSAGES.c.parent_key).where(
                JOB_MESSAGES.c.job_id == job_id
            )
        )
        if row.key in wanted
    }
    new = [
        message_row(job_id, child, now, status="queued", attempts=0, parent_key=parent)
        for child in unique
        if child.key not in known
    ]
    if new:
        conn.execute(sa.insert(JOB_MESSAGES), new)
        counts.total += len(new)
    # Children that started (and recorded themselves) before their parent reported.
    for chunk in _chunks([key for key, parent_key in known.items() if parent_key is None]):
        conn.execute(
            sa.update(JOB_MESSAGES)
            .where(JOB_MESSAGES.c.job_id == job_id, JOB_MESSAGES.c.key.in_(chunk))
            .values(parent_key=parent)
        )


def _chunks(keys: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _write_job(
    conn: sa.Connection,
    job_id: str,
    current: str,
    counts: _Counts,
    now: datetime,
    *,
    started: bool,
    failure: _Failure | None,
) -> JobStatus:
    status = derive_status(current, counts, started=started)
    values: dict[str, object] = {
        "status": status,
        "messages_total": counts.total,
        "messages_completed": counts.completed,
        "messages_failed": counts.failed,
        "updated_at": now,
    }
    if failure is not None:
        values |= {
            "error": failure.error,
            "error_step": failure.step,
            "dead_letter_id": failure.dead_letter_id,
        }
    elif status != "failed":
        values |= {"error": None, "error_step": None, "dead_letter_id": None}
    conn.execute(sa.update(JOBS).where(JOBS.c.id == job_id).values(**values))
    return status
