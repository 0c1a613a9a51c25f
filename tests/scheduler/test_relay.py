from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from contracts import Contract, PostCallJobData
from contracts.errors import TransientError
from infra.bus.publishing import Envelope, InMemoryPublisher
from infra.store.jobs import SqlJobLedger
from infra.store.tables import JOBS
from infra.store.tenants import SqlTenantDirectory
from scheduler.relay import relay_once
from tests.builders import make_health_check_job, make_inbox_entry, make_post_call_job
from tests.fakes import FixedClock

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class FailingAfter(InMemoryPublisher):
    """Publishes ``limit`` envelopes, then behaves like a broker that went down."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def publish(self, envelope: Envelope) -> str:
        if len(self.published) >= self.limit:
            raise TransientError("redis is down")
        return super().publish(envelope)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def ledger(sqlite_engine: sa.Engine, clock: FixedClock) -> SqlJobLedger:
    return SqlJobLedger(sqlite_engine, clock=clock)


@pytest.fixture
def tenant_id(sqlite_engine: sa.Engine) -> str:
    tenant, _key = SqlTenantDirectory(sqlite_engine).add_tenant("acme")
    return tenant.id


def _accept(
    ledger: SqlJobLedger,
    tenant_id: str,
    conversation_id: str,
    job_id: str,
    *,
    contract: Contract | None = None,
) -> None:
    job = contract or make_post_call_job(
        tenant_id=tenant_id, conversation_id=conversation_id, job_id=job_id
    )
    ledger.accept(make_inbox_entry(job))


def test_pending_jobs_are_published_in_order_and_marked(
    ledger: SqlJobLedger, clock: FixedClock, tenant_id: str
) -> None:
    for i in range(3):
        _accept(ledger, tenant_id, f"conv_{i}", f"job_{i}")
        clock.advance(timedelta(seconds=1))
    publisher = InMemoryPublisher()

    assert relay_once(ledger, publisher, min_age_s=0) == 3

    assert [e.options["job_id"] for e in publisher.published] == ["job_0", "job_1", "job_2"]
    first = publisher.published[0]
    assert (first.queue, first.actor) == ("calls.transcript", "fetch_transcript")
    assert first.options["contract"] == "PostCallJobData"
    assert first.options["correlation_id"] == "conv_0"
    assert first.options["tenant_id"] == tenant_id
    assert PostCallJobData.model_validate(first.payload).conversation_id == "conv_0"
    assert ledger.pending(min_age_s=0, limit=10) == []
    assert relay_once(ledger, publisher, min_age_s=0) == 0
    assert len(publisher.published) == 3


def test_jobs_younger_than_the_minimum_age_are_left_to_the_producer(
    ledger: SqlJobLedger, clock: FixedClock, tenant_id: str
) -> None:
    _accept(ledger, tenant_id, "conv_old", "job_old")
    clock.advance(timedelta(seconds=10))
    _accept(ledger, tenant_id, "conv_new", "job_new")
    clock.advance(timedelta(seconds=1))
    publisher = InMemoryPublisher()

    assert relay_once(ledger, publisher, min_age_s=5) == 1

    assert [e.options["job_id"] for e in publisher.published] == ["job_old"]
    assert [j.job_id for j in ledger.pending(min_age_s=0, limit=10)] == ["job_new"]


def test_a_broker_still_down_stops_the_relay_and_keeps_the_rest_pending(
    ledger: SqlJobLedger, clock: FixedClock, tenant_id: str
) -> None:
    for i in range(4):
        _accept(ledger, tenant_id, f"conv_{i}", f"job_{i}")
        clock.advance(timedelta(seconds=1))
    publisher = FailingAfter(limit=1)

    assert relay_once(ledger, publisher, min_age_s=0) == 1

    assert [j.job_id for j in ledger.pending(min_age_s=0, limit=10)] == [
        "job_1",
        "job_2",
        "job_3",
    ]
    publisher.limit = 10
    assert relay_once(ledger, publisher, min_age_s=0) == 3
    assert ledger.pending(min_age_s=0, limit=10) == []


def test_the_limit_bounds_one_relay_pass(
    ledger: SqlJobLedger, clock: FixedClock, tenant_id: str
) -> None:
    for i in range(5):
        _accept(ledger, tenant_id, f"conv_{i}", f"job_{i}")
        clock.advance(timedelta(seconds=1))
    publisher = InMemoryPublisher()

    assert relay_once(ledger, publisher, min_age_s=0, limit=2) == 2
    assert relay_once(ledger, publisher, min_age_s=0, limit=10) == 3


def test_a_health_check_job_goes_to_its_own_route(
    ledger: SqlJobLedger, clock: FixedClock, tenant_id: str
) -> None:
    job = make_health_check_job(tenant_id=tenant_id, job_id="job_h", conversation_id="conv_h")
    _accept(ledger, tenant_id, "conv_h", "job_h", contract=job)
    clock.advance(timedelta(seconds=1))
    publisher = InMemoryPublisher()

    assert relay_once(ledger, publisher, min_age_s=0) == 1
    assert publisher.published[0].actor == "record_health_check"


def test_a_job_whose_payload_no_longer_validates_fails_at_intake_without_blocking_others(
    ledger: SqlJobLedger, clock: FixedClock, tenant_id: str, sqlite_engine: sa.Engine
) -> None:
    _accept(ledger, tenant_id, "conv_bad", "job_bad")
    with sqlite_engine.begin() as conn:
        conn.execute(
            sa.update(JOBS).where(JOBS.c.id == "job_bad").values(payload={"job_id": "job_bad"})
        )
    clock.advance(timedelta(seconds=1))
    _accept(ledger, tenant_id, "conv_ok", "job_ok")
    clock.advance(timedelta(seconds=1))
    publisher = InMemoryPublisher()

    assert relay_once(ledger, publisher, min_age_s=0) == 1

    assert [e.options["job_id"] for e in publisher.published] == ["job_ok"]
    assert ledger.pending(min_age_s=0, limit=10) == []
    with sqlite_engine.connect() as conn:
        bad = conn.execute(sa.select(JOBS).where(JOBS.c.id == "job_bad")).one()
    assert (bad.status, bad.error_step) == ("failed", "intake")
    assert bad.error.startswith("failed at intake: PostCallJobData no longer validates (")
    assert "conversation_id: Field required" in bad.error
    # It is not tried again: the next pass publishes nothing and changes nothing.
    assert relay_once(ledger, publisher, min_age_s=0) == 0
    assert ledger.fail_at_intake("job_ok", error="x") is False  # published: left alone
