"""The read side of jobs: ``GET /api/jobs/{job_id}`` and the steps of every workflow view.

A job's messages are summarised per step, in pipeline order (the ``position`` each
message was recorded with): one entry per step with the most pressing status of its
messages (failed, then retrying, processing, queued, completed), their attempts added
up and the latest error. A straight pipeline has one message per step, so the entry is
that message; a step that fanned out to 10,000 messages is still one entry, and the
``children`` counts say how many of them are done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

import sqlalchemy as sa

from infra.store.engine import transaction
from infra.store.jobs import INTAKE_STEP
from infra.store.records import (
    OUTSTANDING,
    ChildCounts,
    JobFailure,
    JobStatus,
    JobView,
    MessageStatus,
    StepRecord,
)
from infra.store.tables import JOB_MESSAGES, JOBS, TENANTS

_PRECEDENCE: tuple[MessageStatus, ...] = ("failed", "retrying", "processing", "queued", "completed")

ERRORS_SCANNED = 200
"""Most recent errors read to find each step's latest one."""


class SqlJobQueries:
    """``JobQueries``: any job, by id."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def failed_at_intake(self, *, limit: int = 100) -> list[JobView]:
        """Jobs that failed at intake (their first message no longer validates), newest first."""
        query = (
            sa.select(JOBS.c.id)
            .where(JOBS.c.status == "failed", JOBS.c.error_step == INTAKE_STEP)
            .order_by(JOBS.c.updated_at.desc())
            .limit(limit)
        )
        with transaction(self._engine) as conn:
            ids = list(conn.execute(query).scalars())
        views = [self.job_view(job_id, tenant_id=None) for job_id in ids]
        return [view for view in views if view is not None]

    def count_failed_at_intake(self) -> int:
        """How many jobs failed at intake (one indexed count, no view built)."""
        query = sa.select(sa.func.count()).where(
            JOBS.c.status == "failed", JOBS.c.error_step == INTAKE_STEP
        )
        with transaction(self._engine) as conn:
            return int(conn.execute(query).scalar_one())

    def job_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        """Jobs last updated since ``since``, counted by kind and status."""
        query = (
            sa.select(JOBS.c.kind, JOBS.c.status, sa.func.count())
            .where(JOBS.c.updated_at >= since)
            .group_by(JOBS.c.kind, JOBS.c.status)
        )
        counts: dict[str, dict[str, int]] = {}
        with transaction(self._engine) as conn:
            for kind, status, count in conn.execute(query):
                counts.setdefault(kind, {})[status] = int(count)
        return counts

    def job_view(self, job_id: str, *, tenant_id: str | None) -> JobView | None:
        """The job, or None if unknown or (with ``tenant_id``) another tenant's."""
        query = (
            sa.select(JOBS, TENANTS.c.name.label("tenant_name"))
            .outerjoin(TENANTS, TENANTS.c.id == JOBS.c.tenant_id)
            .where(JOBS.c.id == job_id)
        )
        if tenant_id is not None:
            query = query.where(JOBS.c.tenant_id == tenant_id)
        with transaction(self._engine) as conn:
            job = conn.execute(query).first()
            if job is None:
                return None
            steps = step_records(conn, job_id)
            children = _children(conn, job_id)
        failure = (
            JobFailure(step=job.error_step, error=job.error, dead_letter_id=job.dead_letter_id)
            if job.status == "failed"
            else None
        )
        return JobView(
            job_id=job.id,
            kind=job.kind,
            status=cast(JobStatus, job.status),
            tenant_id=job.tenant_id,
            tenant_name=job.tenant_name,
            correlation_id=job.correlation_id,
            created_at=job.created_at,
            updated_at=job.updated_at,
            steps=steps,
            children=children,
            failure=failure,
            redrives=job.redrives,
        )


def step_records(conn: sa.Connection, job_id: str) -> list[StepRecord]:
    """The job's steps in pipeline order, each summarising its messages."""
    rows = conn.execute(
        sa.select(
            JOB_MESSAGES.c.position,
            JOB_MESSAGES.c.name,
            JOB_MESSAGES.c.status,
            sa.func.count().label("messages"),
            sa.func.sum(JOB_MESSAGES.c.attempts).label("attempts"),
            sa.func.max(JOB_MESSAGES.c.updated_at).label("updated_at"),
        )
        .where(JOB_MESSAGES.c.job_id == job_id)
        .group_by(JOB_MESSAGES.c.position, JOB_MESSAGES.c.name, JOB_MESSAGES.c.status)
    ).all()
    errors = _latest_errors(conn, job_id)
    steps: dict[tuple[int, str], list[sa.Row[tuple[object, ...]]]] = {}
    for row in rows:
        steps.setdefault((row.position, row.name), []).append(row)
    return [_summary(name, group, errors.get(name)) for (_, name), group in sorted(steps.items())]


def _summary(
    name: str, group: Sequence[sa.Row[tuple[object, ...]]], error: str | None
) -> StepRecord:
    statuses = {cast(MessageStatus, row.status) for row in group}
    status = next(s for s in _PRECEDENCE if s in statuses)
    return StepRecord(
        name=name,
        status=status,
        attempts=sum(int(cast(int, row.attempts) or 0) for row in group),
        error=error if status != "completed" else None,
        updated_at=max(cast(datetime, row.updated_at) for row in group),
        messages=sum(int(cast(int, row.messages)) for row in group),
    )


def _latest_errors(conn: sa.Connection, job_id: str) -> dict[str, str]:
    rows = conn.execute(
        sa.select(JOB_MESSAGES.c.name, JOB_MESSAGES.c.error)
        .where(JOB_MESSAGES.c.job_id == job_id, JOB_MESSAGES.c.error.is_not(None))
        .order_by(JOB_MESSAGES.c.updated_at.desc())
        .limit(ERRORS_SCANNED)
    ).all()
    latest: dict[str, str] = {}
    for name, error in rows:
        latest.setdefault(name, error)
    return latest


def _children(conn: sa.Connection, job_id: str) -> ChildCounts:
    rows = conn.execute(
        sa.select(JOB_MESSAGES.c.status, sa.func.count())
        .where(JOB_MESSAGES.c.job_id == job_id, JOB_MESSAGES.c.parent_key.is_not(None))
        .group_by(JOB_MESSAGES.c.status)
    ).all()
    by_status = {status: int(count) for status, count in rows}
    return ChildCounts(
        total=sum(by_status.values()),
        completed=by_status.get("completed", 0),
        failed=by_status.get("failed", 0),
        outstanding=sum(by_status.get(s, 0) for s in OUTSTANDING),
    )
