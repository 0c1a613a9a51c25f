from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from contracts.errors import TransientError
from infra.bus.publishing import Envelope, InMemoryPublisher
from infra.store.jobs import SqlJobLedger
from infra.store.tables import JOBS
from infra.store.tenants import SqlTenantDirectory
from scheduler.redrive import redrive_stalled
from tests.builders import make_inbox_entry, make_post_call_job
from tests.fakes import FixedClock

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

IDLE_S = 900.0


class DownPublisher(InMemoryPublisher):
    def publish(self, envelope: Envelope) -> str:
        raise TransientError(f"redis is down, {envelope.actor} not published")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def ledger(sqlite_engine: sa.Engine, clock: FixedClock) -> SqlJobLedger:
    tenant, _ = SqlTenantDirectory(sqlite_engine).add_tenant("acme")
    ledger = SqlJobLedger(sqlite_engine, clock=clock)
    for n in (1, 2):
        job = make_post_call_job(tenant_id=tenant.id, job_id=f"job_{n}", conversation_id=f"c_{n}")
        ledger.accept(make_inbox_entry(job))
    ledger.mark_published("job_1")
    return ledger


def _job(sqlite_engine: sa.Engine, job_id: str) -> sa.Row[Any]:
    with sqlite_engine.connect() as conn:
        return conn.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).one()


def test_a_stalled_job_gets_its_first_contract_republished_and_counted(
    ledger: SqlJobLedger, clock: FixedClock, sqlite_engine: sa.Engine
) -> None:
    publisher = InMemoryPublisher()
    assert redrive_stalled(ledger, publisher, idle_s=IDLE_S, max_redrives=3) == 0

    clock.advance(timedelta(seconds=IDLE_S + 1))
    assert redrive_stalled(ledger, publisher, idle_s=IDLE_S, max_redrives=3) == 1

    # job_2 was never published: it is the relay's, not a stalled job.
    [envelope] = publisher.published
    assert (envelope.actor, envelope.options["job_id"]) == ("fetch_transcript", "job_1")
    assert _job(sqlite_engine, "job_1").redrives == 1
    # The re-drive restarted the idle clock: nothing more until another idle period.
    assert redrive_stalled(ledger, publisher, idle_s=IDLE_S, max_redrives=3) == 0


def test_a_job_still_stalled_after_its_last_redrive_is_failed_with_the_reason(
    ledger: SqlJobLedger, clock: FixedClock, sqlite_engine: sa.Engine
) -> None:
    publisher = InMemoryPublisher()
    for _ in range(2):
        clock.advance(timedelta(seconds=IDLE_S + 1))
        redrive_stalled(ledger, publisher, idle_s=IDLE_S, max_redrives=2)
    clock.advance(timedelta(seconds=IDLE_S + 1))

    assert redrive_stalled(ledger, publisher, idle_s=IDLE_S, max_redrives=2) == 0

    job = _job(sqlite_engine, "job_1")
    assert (job.status, job.redrives) == ("failed", 2)
    assert job.error == "stalled: no progress for 900 s after 2 re-drive(s)"
    assert len(publisher.published) == 2


def test_a_broker_still_down_leaves_the_job_to_the_next_tick(
    ledger: SqlJobLedger, clock: FixedClock, sqlite_engine: sa.Engine
) -> None:
    clock.advance(timedelta(seconds=IDLE_S + 1))

    assert redrive_stalled(ledger, DownPublisher(), idle_s=IDLE_S, max_redrives=3) == 0

    job = _job(sqlite_engine, "job_1")
    assert (job.status, job.redrives) == ("queued", 0)
    assert redrive_stalled(ledger, InMemoryPublisher(), idle_s=IDLE_S, max_redrives=3) == 1


def test_a_stalled_job_whose_contract_no_longer_validates_is_failed(
    ledger: SqlJobLedger, clock: FixedClock, sqlite_engine: sa.Engine
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(sa.update(JOBS).where(JOBS.c.id == "job_1").values(payload={"x": 1}))
    clock.advance(timedelta(seconds=IDLE_S + 1))

    assert redrive_stalled(ledger, InMemoryPublisher(), idle_s=IDLE_S, max_redrives=3) == 0

    job = _job(sqlite_engine, "job_1")
    assert (job.status, job.error) == (
        "failed",
        "stalled, and its first contract no longer validates",
    )
