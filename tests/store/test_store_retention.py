"""Retention on SQLite and PostgreSQL: what goes when it is old, what never goes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from infra.retention import Retention, configured_rules, uniform_rules
from infra.settings import RetentionSettings
from infra.store.audit import SqlAudit
from infra.store.erasure import CallKey
from infra.store.records import Tenant
from infra.store.retention import Sweep
from infra.store.tables import (
    CALL_EVENTS,
    CALL_LOGS,
    CALLBACKS,
    HEALTH_ANSWERS,
    INTAKE_REJECTIONS,
    JOB_MESSAGES,
    JOBS,
    OUTBOUND_CALLS,
    USERS,
    VECTORS,
)
from infra.store.tenants import SqlTenantDirectory
from infra.store.vectors import SqlVectorIndex
from tests.builders import make_inbox_entry, make_post_call_job
from tests.fakes import FixedClock
from tests.seeds import LONG_AGO, NOW, Seeder, count

YEAR = timedelta(days=365)


@pytest.fixture
def seed(engine: sa.Engine) -> Seeder:
    return Seeder(engine, FixedClock(LONG_AGO))


def _retention(engine: sa.Engine, *, batch_size: int = 500) -> Retention:
    return Retention(engine, SqlVectorIndex(engine), SqlAudit(engine), batch_size=batch_size)


def _jobs(engine: sa.Engine, conversation: str) -> int:
    return count(engine, JOBS, JOBS.c.correlation_id == conversation)


def test_an_old_call_goes_whole_with_its_vectors_and_a_newer_call_stays(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    index = SqlVectorIndex(engine)
    seed.call("conv_old", tenant_id=tenant.id, callback="completed", vectors=index, chunks=20)
    seed.call("conv_old_health", tenant_id=tenant.id, health=True)
    seed.age(YEAR)
    seed.call("conv_new", tenant_id=tenant.id, callback="completed", vectors=index)

    report = _retention(engine).run(
        uniform_rules(300, LONG_AGO + YEAR + timedelta(days=1)), actor="ops", reason="test"
    )

    calls = report.results[0]
    assert calls.records == 2
    assert calls.tally["vectors"] == 21
    assert calls.tally["jobs"] == 2
    assert calls.tally["call logs"] == 1
    assert calls.tally["health answers"] == 3
    assert calls.tally["callbacks"] == 1
    # Its callback call is an outbound call: it goes by its own age, once.
    assert calls.tally["outbound calls"] == 0
    assert report.results[3].tally == {"outbound calls": 1, "call events": 2}
    assert _jobs(engine, "conv_old") == _jobs(engine, "conv_old_health") == 0
    assert count(engine, HEALTH_ANSWERS) == 0
    assert count(engine, CALL_LOGS) == count(engine, CALLBACKS) == 1
    assert count(engine, VECTORS, VECTORS.c.id.startswith("conv_old")) == 0
    assert count(engine, VECTORS, VECTORS.c.id.startswith("conv_new")) == 4
    assert _jobs(engine, "conv_new") == 1
    assert count(engine, OUTBOUND_CALLS) == 1
    assert count(engine, CALL_EVENTS) == 2


def test_a_call_still_processing_or_with_a_callback_to_place_is_kept(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    seed.call("conv_running", tenant_id=tenant.id, status="processing")
    seed.call("conv_queued", tenant_id=tenant.id, status="queued")
    seed.call("conv_due", tenant_id=tenant.id, callback="scheduled")
    seed.call("conv_calling", tenant_id=tenant.id, callback="ringing")
    seed.call("conv_failed", tenant_id=tenant.id, status="failed")

    report = _retention(engine).run(uniform_rules(30, NOW), actor="ops", reason="test")

    assert report.results[0].records == 1
    assert _jobs(engine, "conv_failed") == 0
    for kept in ("conv_running", "conv_queued", "conv_due", "conv_calling"):
        assert _jobs(engine, kept) == 1, kept
        assert count(engine, CALL_LOGS, CALL_LOGS.c.conversation_id == kept) == 1


def test_a_call_with_a_recent_second_job_is_kept(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    seed.call("conv_1", tenant_id=tenant.id)
    seed.age(YEAR)
    # The same conversation again under another Idempotency-Key: a second job.
    again = make_post_call_job(job_id="job-again", tenant_id=tenant.id, conversation_id="conv_1")
    seed.ledger.accept(make_inbox_entry(again, external_id="idem-key-2"))

    # The count is an upper bound (its job is old); the run keeps the call.
    assert Sweep(engine, "calls").count(NOW) == 1
    assert (
        _retention(engine).run(uniform_rules(30, NOW), actor="o", reason="r").results[0].records
        == 0
    )
    assert _jobs(engine, "conv_1") == 2


def test_jobs_of_other_kinds_go_by_status_with_their_step_rows(
    engine: sa.Engine, seed: Seeder
) -> None:
    old_done, old_failed = seed.tick("completed"), seed.tick("failed")
    running = seed.tick("processing")
    seed.age(YEAR)
    new_done = seed.tick("completed")
    settings = RetentionSettings(completed_jobs_days=14, failed_jobs_days=60)

    report = _retention(engine).run(
        configured_rules(settings, LONG_AGO + YEAR + timedelta(days=10)), actor="o", reason="r"
    )

    by_kind = {result.rule.kind: result for result in report.results}
    assert by_kind["completed_jobs"].records == 1
    assert by_kind["completed_jobs"].tally["job steps"] == 3
    assert by_kind["failed_jobs"].records == 1
    remaining = _ids(engine, sa.select(JOBS.c.id))
    assert remaining == {running, new_done}
    assert count(engine, JOB_MESSAGES, JOB_MESSAGES.c.job_id.in_([old_done, old_failed])) == 0
    assert count(engine, JOB_MESSAGES, JOB_MESSAGES.c.job_id == running) == 3


def test_purge_never_touches_running_jobs_users_or_the_audit_log(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    audit = SqlAudit(engine, clock=seed.clock)
    audit.record(actor="ana", action="replay", target="m1", reason="INC-1", outcome="replayed")
    running = [seed.tick("processing"), seed.tick("queued")]
    calls = [
        seed.call("conv_running", tenant_id=tenant.id, status="processing"),
        seed.call("conv_queued", tenant_id=tenant.id, status="queued"),
    ]
    seed.user(tenant.id)
    seed.age(10 * YEAR)

    report = _retention(engine).run(uniform_rules(1, seed.clock()), actor="ops", reason="all")

    assert report.total.total() == 0
    assert _ids(engine, sa.select(JOBS.c.id)) == {*running, *calls}
    assert count(engine, USERS) == 1
    entries = SqlAudit(engine).entries()
    assert [(e.action, e.target) for e in entries] == [("replay", "m1")]


def test_outbound_calls_that_ended_go_with_their_events_and_calls_in_flight_stay(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    user = seed.user(tenant.id)
    ended = [
        seed.outbound(tenant_id=tenant.id, user_id=user, status=s)
        for s in ("completed", "busy", "missed", "unknown")
    ]
    in_flight = [
        seed.outbound(tenant_id=tenant.id, user_id=user, status=s)
        for s in ("queued", "placing", "ringing")
    ]
    seed.event(None)
    seed.event("call_nobody_knows")
    seed.rejection("conv_x")
    seed.age(YEAR)
    recent = seed.outbound(tenant_id=tenant.id, user_id=user, status="completed")
    seed.rejection("conv_y")

    report = _retention(engine).run(uniform_rules(90, seed.clock()), actor="o", reason="r")

    by_kind = {result.rule.kind: result for result in report.results}
    assert by_kind["outbound_calls"].records == len(ended)
    assert by_kind["outbound_calls"].tally["call events"] == 2 * len(ended)
    assert by_kind["call_events"].records == 2
    assert by_kind["intake_rejections"].records == 1
    remaining = _ids(engine, sa.select(OUTBOUND_CALLS.c.id))
    assert remaining == {*in_flight, recent}
    assert count(engine, CALL_EVENTS) == 2 * (len(in_flight) + 1)
    assert count(engine, INTAKE_REJECTIONS) == 1


def test_a_kind_kept_for_ever_is_never_swept(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    seed.call("conv_1", tenant_id=tenant.id)
    settings = RetentionSettings(calls_days=0)

    report = _retention(engine).run(
        configured_rules(settings, NOW + 100 * YEAR), actor="o", reason="r"
    )

    assert report.results[0].rule.cutoff is None
    assert _jobs(engine, "conv_1") == 1


def test_batches_are_bounded_a_limit_leaves_the_rest_and_a_dry_run_only_counts(
    engine: sa.Engine, seed: Seeder
) -> None:
    ticks = [seed.tick("completed", children=1) for _ in range(7)]
    retention = _retention(engine, batch_size=2)
    rules = uniform_rules(30, NOW)

    planned = retention.plan(rules)
    dry = retention.run(rules, actor="o", reason="r", dry_run=True)
    first = retention.run(rules, actor="o", reason="r", limit=5)
    second = retention.run(rules, actor="o", reason="r", limit=5)

    assert planned["completed_jobs"] == 7
    assert dry.results[1].records == 7
    assert dry.results[1].tally["job steps"] == 14
    assert (first.results[1].records, first.results[1].more_left) == (5, True)
    assert (second.results[1].records, second.results[1].more_left) == (2, False)
    assert count(engine, JOBS, JOBS.c.id.in_(ticks)) == 0
    outcomes = [e.outcome for e in SqlAudit(engine).entries(action="retention")]
    assert outcomes == ["completed jobs 2; 6 rows", "completed jobs 5 (more left); 15 rows"]


def test_a_failed_job_replayed_after_it_was_read_is_not_deleted(
    engine: sa.Engine, seed: Seeder
) -> None:
    job = seed.tick("failed", children=1)
    sweep = Sweep(engine, "failed_jobs")
    batch = sweep.next_batch(NOW, None, 10)
    assert batch is not None
    seed.progress.message_requeued(job, f"{job}:0")

    tally = sweep.delete(batch, NOW, dry_run=False)

    assert tally.total() == 0
    assert count(engine, JOBS, JOBS.c.id == job) == 1


def test_calls_of_two_tenants_sharing_a_conversation_id_go_each_on_their_own(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    other, _ = SqlTenantDirectory(engine).add_tenant("globex")
    seed.call("conv_shared", tenant_id=tenant.id)
    seed.age(YEAR)
    seed.call("conv_shared", tenant_id=other.id)

    sweep = Sweep(engine, "calls")
    batch = sweep.next_batch(LONG_AGO + timedelta(days=30), None, 10)

    assert batch is not None
    assert batch.calls == [CallKey(tenant.id, "conv_shared")]
    sweep.delete(batch, LONG_AGO + timedelta(days=30), dry_run=False)
    assert count(engine, CALL_LOGS, CALL_LOGS.c.tenant_id == other.id) == 1
    assert count(engine, CALL_LOGS, CALL_LOGS.c.tenant_id == tenant.id) == 0


def _ids(engine: sa.Engine, query: sa.Select[Any]) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def test_a_dry_run_counts_row_for_row_what_the_run_then_deletes(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    index = SqlVectorIndex(engine)
    user = seed.user(tenant.id)
    for n in range(3):
        seed.call(f"conv_{n}", tenant_id=tenant.id, callback="completed", vectors=index)
    seed.call("conv_h", tenant_id=tenant.id, health=True)
    seed.outbound(tenant_id=tenant.id, user_id=user, status="completed")
    seed.tick("completed")
    seed.tick("failed")
    seed.event(None)
    seed.rejection("conv_x")
    retention = _retention(engine, batch_size=2)
    rules = uniform_rules(30, NOW)

    dry = retention.run(rules, actor="o", reason="r", dry_run=True)
    done = retention.run(rules, actor="o", reason="r")

    deleted = done.total
    assert deleted.pop("vectors") == 12
    assert dry.total == deleted
    assert [r.records for r in dry.results] == [r.records for r in done.results]
