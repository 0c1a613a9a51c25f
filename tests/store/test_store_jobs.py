from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from infra.store.jobs import SqlJobLedger, SqlJobProgress
from infra.store.records import AcceptedJob, Tenant
from infra.store.tables import INTAKE_REJECTIONS, JOB_STEPS, JOBS

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _accept(ledger: SqlJobLedger, tenant: Tenant, **overrides: Any) -> AcceptedJob:
    fields: dict[str, Any] = {
        "source": "elevenlabs",
        "external_id": "evt-1",
        "tenant_id": tenant.id,
        "kind": "general",
        "contract": "PostCallJobData",
        "payload": {"conversation_id": "conv-1", "duration_secs": 42},
        "correlation_id": "conv-1",
        "job_id": "job-1",
    }
    return ledger.accept(**(fields | overrides))


def _job(engine: sa.Engine, job_id: str) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).one()


def _step(engine: sa.Engine, job_id: str, name: str) -> sa.Row[Any]:
    query = sa.select(JOB_STEPS).where(JOB_STEPS.c.job_id == job_id, JOB_STEPS.c.name == name)
    with engine.connect() as conn:
        return conn.execute(query).one()


def test_a_duplicate_delivery_returns_the_first_job_and_changes_nothing(
    engine: sa.Engine, tenant: Tenant
) -> None:
    ledger = SqlJobLedger(engine)

    first = _accept(ledger, tenant)
    second = _accept(ledger, tenant, job_id="job-2", payload={"other": True})

    assert first == AcceptedJob(job_id="job-1", created=True, published=False)
    assert second == AcceptedJob(job_id="job-1", created=False, published=False)
    assert _job(engine, "job-1").payload == {"conversation_id": "conv-1", "duration_secs": 42}
    ledger.mark_published("job-1")
    assert _accept(ledger, tenant, job_id="job-3").published is True


def test_the_same_external_id_from_another_source_is_another_job(
    engine: sa.Engine, tenant: Tenant
) -> None:
    ledger = SqlJobLedger(engine)

    _accept(ledger, tenant)
    other = _accept(ledger, tenant, source="api", job_id="job-2")

    assert other.created is True
    assert other.job_id == "job-2"


def test_concurrent_duplicates_racing_on_one_key_make_one_job(
    engine: sa.Engine, tenant: Tenant
) -> None:
    ledger = SqlJobLedger(engine)
    racers = 4
    barrier = threading.Barrier(racers, timeout=10)
    results: list[AcceptedJob] = []
    errors: list[BaseException] = []

    def race(n: int) -> None:
        try:
            barrier.wait()
            results.append(_accept(ledger, tenant, job_id=f"job-{n}"))
        except BaseException as exc:  # noqa: BLE001  (re-raised below, in the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == racers
    assert sum(result.created for result in results) == 1
    winner = next(result.job_id for result in results if result.created)
    assert {result.job_id for result in results} == {winner}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(JOBS)).scalar_one() == 1


def test_pending_lists_unpublished_jobs_old_enough_oldest_first(
    engine: sa.Engine, tenant: Tenant
) -> None:
    clock = FakeClock()
    ledger = SqlJobLedger(engine, clock=clock)
    _accept(ledger, tenant, external_id="evt-1", job_id="job-1")
    clock.advance(5)
    _accept(ledger, tenant, external_id="evt-2", job_id="job-2", correlation_id="conv-2")
    clock.advance(5)
    _accept(ledger, tenant, external_id="evt-3", job_id="job-3")

    assert [job.job_id for job in ledger.pending(min_age_s=30, limit=10)] == []
    clock.advance(26)
    assert [job.job_id for job in ledger.pending(min_age_s=30, limit=10)] == ["job-1", "job-2"]
    assert [job.job_id for job in ledger.pending(min_age_s=0, limit=2)] == ["job-1", "job-2"]

    pending = ledger.pending(min_age_s=30, limit=10)[1]
    assert pending.contract == "PostCallJobData"
    assert pending.correlation_id == "conv-2"
    assert pending.tenant_id == tenant.id
    assert pending.accepted_at == T0 + timedelta(seconds=5)
    assert pending.payload == {"conversation_id": "conv-1", "duration_secs": 42}


def test_published_or_started_jobs_are_not_pending(engine: sa.Engine, tenant: Tenant) -> None:
    ledger = SqlJobLedger(engine)
    _accept(ledger, tenant, external_id="evt-1", job_id="job-1")
    _accept(ledger, tenant, external_id="evt-2", job_id="job-2")
    _accept(ledger, tenant, external_id="evt-3", job_id="job-3")

    ledger.mark_published("job-1")
    ledger.mark_published("job-1")
    SqlJobProgress(engine).step_started("job-2", "fetch_transcript")

    assert [job.job_id for job in ledger.pending(min_age_s=0, limit=10)] == ["job-3"]


def test_rejections_are_kept_with_their_body_as_text(engine: sa.Engine) -> None:
    ledger = SqlJobLedger(engine)

    ledger.record_rejection(
        source="elevenlabs", external_id=None, reason="unknown agent", payload=b'{"a": "\xff"}'
    )

    with engine.connect() as conn:
        row = conn.execute(sa.select(INTAKE_REJECTIONS)).one()
    assert (row.source, row.external_id, row.reason) == ("elevenlabs", None, "unknown agent")
    assert row.payload == '{"a": "\ufffd"}'
    assert row.created_at.utcoffset() == timedelta(0)


def test_progress_moves_steps_and_the_job_through_retry_death_and_replay(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(SqlJobLedger(engine), tenant)
    progress = SqlJobProgress(engine)

    progress.step_started("job-1", "fetch_transcript")
    assert (_job(engine, "job-1").status, _step(engine, "job-1", "fetch_transcript").attempts) == (
        "processing",
        1,
    )

    progress.step_failed("job-1", "fetch_transcript", error="timeout", dead=False)
    step = _step(engine, "job-1", "fetch_transcript")
    assert (step.status, step.error) == ("retrying", "timeout")
    assert _job(engine, "job-1").status == "processing"

    progress.step_started("job-1", "fetch_transcript")
    progress.step_failed("job-1", "fetch_transcript", error="404 gone", dead=True)
    step = _step(engine, "job-1", "fetch_transcript")
    job = _job(engine, "job-1")
    assert (step.status, step.attempts, step.error) == ("failed", 2, "404 gone")
    assert (job.status, job.error) == ("failed", "404 gone")

    # Replayed from the dead-letter queue, the step now succeeds.
    progress.step_started("job-1", "fetch_transcript")
    assert _job(engine, "job-1").status == "processing"
    progress.step_succeeded("job-1", "fetch_transcript", final=False)
    step = _step(engine, "job-1", "fetch_transcript")
    assert (step.status, step.attempts, step.error) == ("completed", 3, None)
    assert _job(engine, "job-1").status == "processing"

    progress.step_started("job-1", "persist_call")
    progress.step_succeeded("job-1", "persist_call", final=True)
    job = _job(engine, "job-1")
    assert (job.status, job.error) == ("completed", None)
    assert job.updated_at.utcoffset() == timedelta(0)


def test_a_duplicate_delivery_after_completion_does_not_reopen_the_job(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(SqlJobLedger(engine), tenant)
    progress = SqlJobProgress(engine)
    progress.step_started("job-1", "persist_call")
    progress.step_succeeded("job-1", "persist_call", final=True)

    progress.step_started("job-1", "analyze_call")

    assert _job(engine, "job-1").status == "completed"
    assert _step(engine, "job-1", "analyze_call").status == "processing"


def test_a_step_reporting_success_before_it_started_still_gets_a_row(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(SqlJobLedger(engine), tenant)

    SqlJobProgress(engine).step_succeeded("job-1", "index_call", final=False)

    step = _step(engine, "job-1", "index_call")
    assert (step.status, step.attempts) == ("completed", 1)


@pytest.mark.parametrize("report", ["started", "succeeded", "failed"])
def test_progress_of_a_job_missing_from_the_ledger_is_not_recorded(
    engine: sa.Engine, report: str
) -> None:
    progress = SqlJobProgress(engine)

    if report == "started":
        progress.step_started("job-elsewhere", "analyze_call")
    elif report == "succeeded":
        progress.step_succeeded("job-elsewhere", "analyze_call", final=True)
    else:
        progress.step_failed("job-elsewhere", "analyze_call", error="x", dead=True)

    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(JOB_STEPS)).scalar_one() == 0
