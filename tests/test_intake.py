"""Intake: record each job once, dispatch new ones, answer repeats with the first job."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
import sqlalchemy as sa

from contracts.errors import PermanentError, TransientError
from infra.bus.dispatch import InlineDispatcher
from infra.bus.publishing import Envelope, InMemoryPublisher
from infra.intake import Admission, IdempotencyKeyReused, Intake, Submission
from infra.store.jobs import SqlJobLedger
from infra.store.records import Tenant
from infra.store.tables import JOBS
from infra.store.tenants import SqlTenantDirectory
from tests.builders import make_post_call_job

BODY = b'{"type": "post_call_transcription", "data": {"conversation_id": "conv-1"}}'


@dataclass
class RecordingDispatcher:
    """Records what intake handed to the bus."""

    dispatched: list[tuple[str, Envelope]] = field(default_factory=list)

    def dispatch(self, job_id: str, envelope: Envelope) -> None:
        self.dispatched.append((job_id, envelope))


class FailingPublisher:
    """A broker that cannot be reached."""

    def publish(self, envelope: Envelope) -> str:
        raise TransientError(f"broker unreachable, {envelope.actor} not published")


@pytest.fixture
def ledger(sqlite_engine: sa.Engine) -> SqlJobLedger:
    return SqlJobLedger(sqlite_engine)


@pytest.fixture
def acme(sqlite_engine: sa.Engine) -> Tenant:
    tenant, _ = SqlTenantDirectory(sqlite_engine).add_tenant("acme")
    return tenant


@pytest.fixture
def globex(sqlite_engine: sa.Engine) -> Tenant:
    tenant, _ = SqlTenantDirectory(sqlite_engine).add_tenant("globex")
    return tenant


def submission(
    tenant: Tenant,
    job_id: str,
    *,
    conversation_id: str = "conv-1",
    body: bytes = BODY,
    idempotency_key: str | None = None,
) -> Submission:
    return Submission(
        source="elevenlabs",
        tenant_id=tenant.id,
        kind="post_call",
        contract=make_post_call_job(
            job_id=job_id, tenant_id=tenant.id, conversation_id=conversation_id
        ),
        external_id=conversation_id,
        body=body,
        idempotency_key=idempotency_key,
    )


def job_count(sqlite_engine: sa.Engine) -> int:
    with sqlite_engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(JOBS)).scalar_one())


def test_a_new_request_is_accepted_and_dispatched_once(
    ledger: SqlJobLedger, acme: Tenant, sqlite_engine: sa.Engine
) -> None:
    dispatcher = RecordingDispatcher()
    request = submission(acme, "job-1")

    admission = Intake(ledger, dispatcher).submit(request)

    assert admission == Admission("job-1", "accepted")
    assert dispatcher.dispatched == [("job-1", Envelope.of(request.contract))]
    assert job_count(sqlite_engine) == 1


def test_an_accepted_job_is_published_and_no_longer_pending(
    ledger: SqlJobLedger, acme: Tenant
) -> None:
    publisher = InMemoryPublisher()
    intake = Intake(ledger, InlineDispatcher(publisher, ledger))

    intake.submit(submission(acme, "job-1"))

    assert [e.options["job_id"] for e in publisher.published] == ["job-1"]
    assert publisher.published[0].options["tenant_id"] == acme.id
    assert ledger.pending(min_age_s=0, limit=10) == []


def test_a_job_the_broker_did_not_take_is_accepted_and_left_pending_for_the_relay(
    ledger: SqlJobLedger, acme: Tenant
) -> None:
    intake = Intake(ledger, InlineDispatcher(FailingPublisher(), ledger))

    admission = intake.submit(submission(acme, "job-1"))

    assert admission == Admission("job-1", "accepted")
    assert [job.job_id for job in ledger.pending(min_age_s=0, limit=10)] == ["job-1"]


def test_a_natural_id_delivered_twice_is_a_duplicate_of_the_first_job_and_not_dispatched(
    ledger: SqlJobLedger, acme: Tenant, sqlite_engine: sa.Engine
) -> None:
    dispatcher = RecordingDispatcher()
    intake = Intake(ledger, dispatcher)
    intake.submit(submission(acme, "job-1"))

    again = intake.submit(submission(acme, "job-2", body=BODY + b" "))

    assert again == Admission("job-1", "duplicate")
    assert [job_id for job_id, _ in dispatcher.dispatched] == ["job-1"]
    assert job_count(sqlite_engine) == 1


def test_the_same_idempotency_key_and_body_replays_the_first_job(
    ledger: SqlJobLedger, acme: Tenant, sqlite_engine: sa.Engine
) -> None:
    dispatcher = RecordingDispatcher()
    intake = Intake(ledger, dispatcher)
    first = intake.submit(submission(acme, "job-1", idempotency_key="key-1"))

    replay = intake.submit(submission(acme, "job-2", idempotency_key="key-1"))

    assert first == Admission("job-1", "accepted")
    assert replay == Admission("job-1", "replayed")
    assert [job_id for job_id, _ in dispatcher.dispatched] == ["job-1"]
    assert job_count(sqlite_engine) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(
    ledger: SqlJobLedger, acme: Tenant, sqlite_engine: sa.Engine
) -> None:
    dispatcher = RecordingDispatcher()
    intake = Intake(ledger, dispatcher)
    intake.submit(submission(acme, "job-1", idempotency_key="key-1"))

    with pytest.raises(IdempotencyKeyReused, match=r"Idempotency-Key key-1 .*job job-1"):
        intake.submit(submission(acme, "job-2", idempotency_key="key-1", body=b"{}"))

    assert [job_id for job_id, _ in dispatcher.dispatched] == ["job-1"]
    assert job_count(sqlite_engine) == 1


def test_the_same_idempotency_key_for_two_tenants_is_two_jobs(
    ledger: SqlJobLedger, acme: Tenant, globex: Tenant, sqlite_engine: sa.Engine
) -> None:
    dispatcher = RecordingDispatcher()
    intake = Intake(ledger, dispatcher)

    for_acme = intake.submit(submission(acme, "job-1", idempotency_key="key-1"))
    for_globex = intake.submit(submission(globex, "job-2", idempotency_key="key-1"))

    assert for_acme == Admission("job-1", "accepted")
    assert for_globex == Admission("job-2", "accepted")
    assert [(job_id, e.options["tenant_id"]) for job_id, e in dispatcher.dispatched] == [
        ("job-1", acme.id),
        ("job-2", globex.id),
    ]
    assert job_count(sqlite_engine) == 2


def test_an_unknown_tenant_is_refused_and_nothing_is_dispatched(
    ledger: SqlJobLedger, acme: Tenant, sqlite_engine: sa.Engine
) -> None:
    dispatcher = RecordingDispatcher()
    ghost = replace(acme, id="tenant-that-does-not-exist")

    with pytest.raises(PermanentError):
        Intake(ledger, dispatcher).submit(submission(ghost, "job-1"))

    assert dispatcher.dispatched == []
    assert job_count(sqlite_engine) == 0
