"""The scheduler's daily retention run: bounded, audited, on its own trigger."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from infra.retention import Retention
from infra.settings import RetentionSettings, SchedulerSettings
from infra.store.audit import SqlAudit
from infra.store.tables import JOBS
from infra.store.vectors import SqlVectorIndex
from scheduler.main import DAILY_GRACE_S, build_scheduler
from scheduler.retention import DELETED, apply_retention, daily_trigger
from tests.fakes import FixedClock
from tests.seeds import LONG_AGO, NOW, Seeder, count


def _work() -> int:
    return 0


def test_the_daily_run_is_bounded_per_kind_and_audited_under_the_scheduler(
    sqlite_engine: sa.Engine,
) -> None:
    seed = Seeder(sqlite_engine, FixedClock(LONG_AGO))
    for _ in range(5):
        seed.tick("completed", children=1)
    retention = Retention(
        sqlite_engine, SqlVectorIndex(sqlite_engine), SqlAudit(sqlite_engine), batch_size=2
    )
    settings = RetentionSettings(max_per_run=3)
    before = DELETED.labels("completed_jobs")._value.get()

    first = apply_retention(retention, settings, clock=lambda: NOW)
    second = apply_retention(retention, settings, clock=lambda: NOW)
    third = apply_retention(retention, settings, clock=lambda: NOW)

    assert (first, second, third) == (3, 2, 0)
    assert count(sqlite_engine, JOBS) == 0
    assert DELETED.labels("completed_jobs")._value.get() - before == 5
    entries = SqlAudit(sqlite_engine).entries(action="retention")
    assert [(e.actor, e.outcome) for e in entries] == [
        ("scheduler", "completed jobs 2; 6 rows"),
        ("scheduler", "completed jobs 3 (more left); 9 rows"),
    ]


def test_the_daily_job_fires_at_its_hour_and_not_at_start() -> None:
    settings = RetentionSettings(hour_utc=4)
    scheduler = build_scheduler(
        SchedulerSettings(), _work, _work, daily={"retention": (_work, daily_trigger(settings))}
    )

    job = scheduler.get_job("retention")
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    assert job.trigger.get_next_fire_time(None, now) == datetime(2026, 6, 2, 4, 0, tzinfo=UTC)
    assert job.misfire_grace_time == DAILY_GRACE_S
    assert (job.coalesce, job.max_instances) == (True, 1)
    # Unlike the relay and the ticks, no first run at start: APScheduler computes its
    # first fire from the trigger when the scheduler starts.
    assert not hasattr(job, "next_run_time")
    assert hasattr(scheduler.get_job("relay"), "next_run_time")
