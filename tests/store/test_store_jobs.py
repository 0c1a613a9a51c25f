from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger
from infra.store.progress import SqlJobProgress
from infra.store.records import AcceptedJob, InboxEntry, MessageRef, RelayBacklog, Tenant
from infra.store.tables import INTAKE_REJECTIONS, JOB_MESSAGES, JOBS
from infra.store.tenants import SqlTenantDirectory
from tests.builders import make_post_call_job
from tests.fakes import FixedClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _accept(ledger: SqlJobLedger, tenant: Tenant, **overrides: Any) -> AcceptedJob:
    job_id = overrides.pop("job_id", "job-1")
    conversation = overrides.pop("conversation_id", "conv-1")
    fields: dict[str, Any] = {
        "source": "elevenlabs",
        "external_id": conversation,
        "tenant_id": tenant.id,
        "kind": "post_call",
        "contract": make_post_call_job(
            job_id=job_id, tenant_id=tenant.id, conversation_id=conversation
        ),
    }
    return ledger.accept(InboxEntry(**(fields | overrides)))


def _job(engine: sa.Engine, job_id: str) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).one()


def test_a_duplicate_delivery_returns_the_first_job_and_changes_nothing(
    engine: sa.Engine, tenant: Tenant
) -> None:
    ledger = SqlJobLedger(engine)

    first = _accept(ledger, tenant)
    second = _accept(ledger, tenant, job_id="job-2")

    assert first == AcceptedJob(job_id="job-1", created=True, published=False)
    assert second == AcceptedJob(job_id="job-1", created=False, published=False)
    assert _job(engine, "job-1").payload["job_id"] == "job-1"
    ledger.mark_published("job-1")
    assert _accept(ledger, tenant, job_id="job-3").published is True


def test_a_new_job_counts_its_first_message_as_queued(engine: sa.Engine, tenant: Tenant) -> None:
    _accept(SqlJobLedger(engine), tenant)

    with engine.connect() as conn:
        [message] = conn.execute(sa.select(JOB_MESSAGES)).all()
    assert (message.key, message.name, message.position, message.status, message.attempts) == (
        f"post-call:{tenant.id}:conv-1",
        "fetch_transcript",
        0,
        "queued",
        0,
    )
    job = _job(engine, "job-1")
    assert (job.status, job.messages_total, job.kind, job.dedupe_key) == (
        "queued",
        1,
        "post_call",
        f"elevenlabs/{tenant.id}/conv-1",
    )


def test_the_same_external_id_from_another_source_or_tenant_is_another_job(
    engine: sa.Engine, tenant: Tenant
) -> None:
    ledger = SqlJobLedger(engine)
    other_tenant, _ = SqlTenantDirectory(engine).add_tenant("globex")

    _accept(ledger, tenant)
    other_source = _accept(ledger, tenant, source="api", job_id="job-2")
    other_owner = _accept(ledger, other_tenant, job_id="job-3")

    assert (other_source.created, other_source.job_id) == (True, "job-2")
    assert (other_owner.created, other_owner.job_id) == (True, "job-3")


def test_the_first_request_hash_comes_back_with_a_repeat(engine: sa.Engine, tenant: Tenant) -> None:
    ledger = SqlJobLedger(engine)
    _accept(ledger, tenant, external_id="idempotency-key:k1", request_hash="aaa")

    repeat = _accept(ledger, tenant, external_id="idempotency-key:k1", request_hash="bbb")

    assert (repeat.created, repeat.request_hash) == (False, "aaa")


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
        assert conn.execute(sa.select(sa.func.count()).select_from(JOB_MESSAGES)).scalar_one() == 1


def test_pending_lists_unpublished_jobs_old_enough_oldest_first(
    engine: sa.Engine, tenant: Tenant
) -> None:
    clock = FixedClock(T0)
    ledger = SqlJobLedger(engine, clock=clock)
    _accept(ledger, tenant, conversation_id="conv-1", job_id="job-1")
    clock.advance(timedelta(seconds=5))
    _accept(ledger, tenant, conversation_id="conv-2", job_id="job-2")
    clock.advance(timedelta(seconds=5))
    _accept(ledger, tenant, conversation_id="conv-3", job_id="job-3")

    assert [job.job_id for job in ledger.pending(min_age_s=30, limit=10)] == []
    clock.advance(timedelta(seconds=26))
    assert [job.job_id for job in ledger.pending(min_age_s=30, limit=10)] == ["job-1", "job-2"]
    assert [job.job_id for job in ledger.pending(min_age_s=0, limit=2)] == ["job-1", "job-2"]

    pending = ledger.pending(min_age_s=30, limit=10)[1]
    assert pending.contract == "PostCallJobData"
    assert pending.correlation_id == "conv-2"
    assert pending.tenant_id == tenant.id
    assert pending.accepted_at == T0 + timedelta(seconds=5)
    assert pending.payload["conversation_id"] == "conv-2"


def test_published_or_started_jobs_are_not_pending(engine: sa.Engine, tenant: Tenant) -> None:
    ledger = SqlJobLedger(engine)
    for n in (1, 2, 3):
        _accept(ledger, tenant, conversation_id=f"conv-{n}", job_id=f"job-{n}")

    ledger.mark_published("job-1")
    ledger.mark_published("job-1")
    SqlJobProgress(engine).message_started(
        "job-2", MessageRef(f"post-call:{tenant.id}:conv-2", "fetch_transcript", 0)
    )

    assert [job.job_id for job in ledger.pending(min_age_s=0, limit=10)] == ["job-3"]


def test_the_relay_backlog_counts_every_unpublished_queued_job_and_dates_the_oldest(
    engine: sa.Engine, tenant: Tenant
) -> None:
    clock = FixedClock(T0)
    ledger = SqlJobLedger(engine, clock=clock)
    assert ledger.relay_backlog() == RelayBacklog(jobs=0, oldest_accepted_at=None)
    for n in (1, 2, 3, 4):
        _accept(ledger, tenant, conversation_id=f"conv-{n}", job_id=f"job-{n}")
        clock.advance(timedelta(seconds=5))

    ledger.mark_published("job-1")
    ledger.fail_at_intake("job-2", error="no longer validates")

    backlog = ledger.relay_backlog()
    assert backlog == RelayBacklog(jobs=2, oldest_accepted_at=T0 + timedelta(seconds=10))
    assert backlog.oldest_accepted_at is not None
    assert backlog.oldest_accepted_at.tzinfo is not None


def test_stalled_lists_published_unfinished_jobs_idle_too_long(
    engine: sa.Engine, tenant: Tenant
) -> None:
    clock = FixedClock(T0)
    ledger = SqlJobLedger(engine, clock=clock)
    progress = SqlJobProgress(engine, clock=clock)
    for n in (1, 2, 3, 4):
        _accept(ledger, tenant, conversation_id=f"conv-{n}", job_id=f"job-{n}")
    for n in (1, 2, 3):
        ledger.mark_published(f"job-{n}")
    done = MessageRef(f"post-call:{tenant.id}:conv-3", "fetch_transcript", 0)
    progress.message_started("job-3", done)
    progress.message_succeeded("job-3", done)
    clock.advance(timedelta(seconds=500))
    progress.message_started(
        "job-2", MessageRef(f"post-call:{tenant.id}:conv-2", "fetch_transcript", 0)
    )
    clock.advance(timedelta(seconds=500))

    # job-1: published, idle 1,000 s. job-2 moved 500 s ago. job-3 completed. job-4 is
    # the relay's (never published).
    assert [job.job_id for job in ledger.stalled(idle_s=900, limit=10)] == ["job-1"]
    assert [job.job_id for job in ledger.stalled(idle_s=400, limit=10)] == ["job-1", "job-2"]

    ledger.mark_redriven("job-1")
    assert [job.job_id for job in ledger.stalled(idle_s=400, limit=10)] == ["job-2"]
    clock.advance(timedelta(seconds=901))
    stalled = ledger.stalled(idle_s=900, limit=10)
    assert [(job.job_id, job.redrives) for job in stalled] == [("job-2", 0), ("job-1", 1)]

    ledger.fail_stalled("job-1", error="stalled: no progress")
    job = _job(engine, "job-1")
    assert (job.status, job.error, job.redrives) == ("failed", "stalled: no progress", 1)


def test_rejections_are_kept_with_their_body_as_text_even_with_nul(engine: sa.Engine) -> None:
    ledger = SqlJobLedger(engine)

    ledger.record_rejection(
        source="elevenlabs",
        external_id="conv\x00\ud800",
        reason="unknown agent",
        payload=b'{"a": "\xff\x00"}',
    )

    with engine.connect() as conn:
        row = conn.execute(sa.select(INTAKE_REJECTIONS)).one()
    assert (row.source, row.external_id, row.reason) == (
        "elevenlabs",
        "conv\ufffd?",
        "unknown agent",
    )
    assert row.payload == '{"a": "\ufffd\ufffd"}'
    assert row.created_at.utcoffset() == timedelta(0)


def test_jobs_failed_at_intake_are_listed_and_counted_alike(
    engine: sa.Engine, tenant: Tenant
) -> None:
    ledger = SqlJobLedger(engine)
    queries = SqlJobQueries(engine)
    for n in (1, 2, 3):
        _accept(ledger, tenant, conversation_id=f"conv-{n}", job_id=f"job-{n}")
    assert queries.count_failed_at_intake() == 0

    ledger.fail_at_intake("job-1", error="transcript: field required")
    ledger.fail_at_intake("job-3", error="transcript: field required")

    listed = queries.failed_at_intake(limit=10)
    assert sorted(job.job_id for job in listed) == ["job-1", "job-3"]
    assert queries.count_failed_at_intake() == len(listed)
