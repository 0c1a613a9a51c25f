"""Per-message job progress and the job view, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger
from infra.store.progress import SqlJobProgress
from infra.store.records import ChildCounts, JobFailure, MessageRef, Tenant
from infra.store.tables import JOB_MESSAGES, JOBS
from tests.builders import make_inbox_entry, make_post_call_job
from tests.fakes import FixedClock

ROOT = MessageRef("tick:1", "emit_tick", 0)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _child(n: int) -> MessageRef:
    return MessageRef(f"user-call:{n}", "place_call", 1)


@pytest.fixture
def job(engine: sa.Engine, tenant: Tenant) -> str:
    contract = make_post_call_job(job_id="job-1", tenant_id=tenant.id, conversation_id="conv-1")
    SqlJobLedger(engine).accept(make_inbox_entry(contract, source="test"))
    return "job-1"


@pytest.fixture
def progress(engine: sa.Engine) -> SqlJobProgress:
    return SqlJobProgress(engine)


def _job(engine: sa.Engine, job_id: str = "job-1") -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).one()


def _message(engine: sa.Engine, key: str) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(JOB_MESSAGES).where(JOB_MESSAGES.c.key == key)).one()


def _first(tenant: Tenant) -> MessageRef:
    return MessageRef(f"post-call:{tenant.id}:conv-1", "fetch_transcript", 0)


def test_a_straight_pipeline_moves_through_retry_death_replay_and_completion(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    assert (_job(engine).status, _message(engine, first.key).attempts) == ("processing", 1)

    progress.message_failed(job, first, error="TransientError: timeout", dead_letter_id=None)
    message = _message(engine, first.key)
    assert (message.status, message.error) == ("retrying", "TransientError: timeout")
    assert _job(engine).status == "processing"

    progress.message_started(job, first)
    progress.message_failed(job, first, error="PermanentError: 404 gone", dead_letter_id="dl-1")
    row = _job(engine)
    assert (row.status, row.error, row.error_step, row.dead_letter_id) == (
        "failed",
        "PermanentError: 404 gone",
        "fetch_transcript",
        "dl-1",
    )

    # Replayed from the dead-letter queue, the message runs again and succeeds.
    progress.message_started(job, first)
    assert _job(engine).status == "processing"
    second = MessageRef("analyzed", "analyze_call", 1)
    progress.message_succeeded(job, first, children=[second])
    message = _message(engine, first.key)
    assert (message.status, message.attempts, message.error) == ("completed", 3, None)
    assert _job(engine).status == "processing"

    progress.message_started(job, second)
    progress.message_succeeded(job, second)
    row = _job(engine)
    assert (row.status, row.error, row.dead_letter_id) == ("completed", None, None)
    assert (row.messages_total, row.messages_completed, row.messages_failed) == (2, 2, 0)


def test_a_fan_out_completes_only_when_its_last_child_does(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_succeeded(job, first, children=[_child(n) for n in range(3)])
    assert _job(engine).status == "processing"

    for n in range(2):
        progress.message_started(job, _child(n))
        progress.message_succeeded(job, _child(n))
        assert _job(engine).status == "processing"
    view = SqlJobQueries(engine).job_view(job, tenant_id=None)
    assert view is not None
    assert view.children == ChildCounts(total=3, completed=2, failed=0, outstanding=1)

    progress.message_started(job, _child(2))
    progress.message_succeeded(job, _child(2))
    assert _job(engine).status == "completed"


def test_a_child_that_reports_before_its_parent_is_still_counted_as_its_child(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_started(job, _child(0))
    progress.message_succeeded(job, _child(0))
    assert _job(engine).status == "processing"

    progress.message_succeeded(job, first, children=[_child(0)])

    assert _message(engine, _child(0).key).parent_key == first.key
    row = _job(engine)
    assert (row.status, row.messages_total) == ("completed", 2)


def test_one_dead_child_fails_the_job_until_it_is_replayed(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_succeeded(job, first, children=[_child(0), _child(1)])
    progress.message_started(job, _child(0))
    progress.message_failed(job, _child(0), error="PermanentError: busy", dead_letter_id="dl-7")
    progress.message_started(job, _child(1))
    progress.message_succeeded(job, _child(1))

    view = SqlJobQueries(engine).job_view(job, tenant_id=tenant.id)
    assert view is not None
    assert view.status == "failed"
    assert view.failure == JobFailure("place_call", "PermanentError: busy", "dl-7")
    assert view.children == ChildCounts(total=2, completed=1, failed=1, outstanding=0)

    progress.message_started(job, _child(0))
    assert _job(engine).status == "processing"
    progress.message_succeeded(job, _child(0))
    assert _job(engine).status == "completed"


def test_a_redelivered_completed_message_does_not_reopen_the_job(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_succeeded(job, first)
    assert _job(engine).status == "completed"

    progress.message_started(job, first)

    assert _job(engine).status == "completed"
    message = _message(engine, first.key)
    assert (message.status, message.attempts) == ("completed", 2)


def test_siblings_finishing_at_the_same_moment_still_complete_the_job(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    children = [_child(n) for n in range(24)]
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_succeeded(job, first, children=children)
    barrier = threading.Barrier(8, timeout=10)

    def finish(child: MessageRef) -> None:
        if int(child.key.rsplit(":", 1)[1]) < 8:
            barrier.wait()
        progress.message_started(job, child)
        progress.message_succeeded(job, child)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(finish, children))

    row = _job(engine)
    assert (row.status, row.messages_total, row.messages_completed) == ("completed", 25, 25)


@pytest.mark.parametrize("report", ["started", "succeeded", "failed"])
def test_progress_of_a_job_missing_from_the_ledger_is_not_recorded(
    engine: sa.Engine, progress: SqlJobProgress, report: str
) -> None:
    message = MessageRef("k", "analyze_call", 1)
    if report == "started":
        progress.message_started("job-elsewhere", message)
    elif report == "succeeded":
        progress.message_succeeded("job-elsewhere", message)
    else:
        progress.message_failed("job-elsewhere", message, error="x", dead_letter_id="d")

    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(JOB_MESSAGES)).scalar_one() == 0


def test_the_job_view_summarises_each_step_in_pipeline_order(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_succeeded(job, first, children=[_child(n) for n in range(3)])
    progress.message_started(job, _child(0))
    progress.message_failed(job, _child(0), error="TransientError: 503", dead_letter_id=None)
    progress.message_started(job, _child(0))
    progress.message_started(job, _child(1))
    progress.message_succeeded(job, _child(1))

    view = SqlJobQueries(engine).job_view(job, tenant_id=tenant.id)

    assert view is not None
    assert (view.kind, view.tenant_name, view.correlation_id) == ("post_call", "acme", "conv-1")
    assert [(s.name, s.status, s.attempts, s.messages) for s in view.steps] == [
        ("fetch_transcript", "completed", 1, 1),
        ("place_call", "processing", 3, 3),
    ]
    assert view.steps[1].error is None  # the retry's error was cleared when it ran again
    assert view.children == ChildCounts(total=3, completed=1, failed=0, outstanding=2)
    assert SqlJobQueries(engine).job_view(job, tenant_id="another-tenant") is None
    assert SqlJobQueries(engine).job_view("no-such-job", tenant_id=None) is None


def test_a_fan_out_of_more_children_than_one_lookup_holds_is_recorded_once_each(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    early = [_child(n) for n in (3, 700, 1199)]
    for child in early:  # started before their parent reported
        progress.message_started(job, child)
    children = [_child(n) for n in range(1200)]
    progress.message_started(job, first)

    progress.message_succeeded(job, first, children=[*children, children[5]])

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(JOB_MESSAGES.c.key, JOB_MESSAGES.c.parent_key, JOB_MESSAGES.c.status).where(
                JOB_MESSAGES.c.parent_key.is_not(None)
            )
        ).all()
    assert len(rows) == 1200
    assert {row.parent_key for row in rows} == {first.key}
    assert {row.key for row in rows if row.status == "processing"} == {c.key for c in early}
    view = SqlJobQueries(engine).job_view(job, tenant_id=None)
    assert view is not None
    assert view.children == ChildCounts(total=1200, completed=0, failed=0, outstanding=1200)
    assert _job(engine).messages_total == 1201


def test_a_replayed_dead_letter_takes_its_job_out_of_failed_at_once(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_failed(job, first, error="PermanentError: 404 gone", dead_letter_id="dl-1")
    assert _job(engine).status == "failed"

    assert progress.message_requeued(job, first.key) is True

    row = _job(engine)
    assert (row.status, row.error, row.error_step, row.dead_letter_id) == (
        "processing",
        None,
        None,
        None,
    )
    assert row.messages_failed == 0
    message = _message(engine, first.key)
    assert (message.status, message.dead_letter_id) == ("queued", None)
    # The replay runs and succeeds: the job completes.
    progress.message_started(job, first)
    progress.message_succeeded(job, first)
    assert _job(engine).status == "completed"


def test_a_requeue_whose_replay_did_not_happen_fails_the_job_again(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)
    progress.message_failed(job, first, error="PermanentError: 404 gone", dead_letter_id="dl-1")
    progress.message_requeued(job, first.key)

    withdrawn = progress.requeue_withdrawn(
        job, first.key, step=first.step, error="PermanentError: 404 gone", dead_letter_id="dl-1"
    )

    assert withdrawn is True
    row = _job(engine)
    assert (row.status, row.error, row.error_step, row.dead_letter_id, row.messages_failed) == (
        "failed",
        "PermanentError: 404 gone",
        first.step,
        "dl-1",
        1,
    )
    assert _message(engine, first.key).status == "failed"
    # Once the message has moved on (another replay started it), nothing is undone.
    progress.message_requeued(job, first.key)
    progress.message_started(job, first)
    assert not progress.requeue_withdrawn(
        job, first.key, step=first.step, error="x", dead_letter_id="dl-1"
    )
    assert _job(engine).status == "processing"


def test_requeueing_a_message_that_had_not_failed_changes_nothing(
    engine: sa.Engine, tenant: Tenant, job: str, progress: SqlJobProgress
) -> None:
    first = _first(tenant)
    progress.message_started(job, first)

    assert progress.message_requeued(job, first.key) is False
    assert progress.message_requeued("job-elsewhere", first.key) is False
    assert progress.message_requeued(job, "no-such-key") is False
    assert _message(engine, first.key).status == "processing"
    assert _job(engine).status == "processing"


class RecordingObserver:
    """Keeps every completion it hears of."""

    def __init__(self) -> None:
        self.completed: list[tuple[str, float]] = []

    def job_completed(self, pipeline: str, seconds: float) -> None:
        self.completed.append((pipeline, seconds))


def test_the_observer_hears_of_a_completion_once_with_the_time_since_acceptance(
    engine: sa.Engine, tenant: Tenant
) -> None:
    clock = FixedClock(T0)
    contract = make_post_call_job(job_id="job-1", tenant_id=tenant.id, conversation_id="conv-1")
    SqlJobLedger(engine, clock=clock).accept(make_inbox_entry(contract, source="test"))
    observer = RecordingObserver()
    progress = SqlJobProgress(engine, clock=clock, observer=observer)
    first, second = _first(tenant), MessageRef("analyzed", "analyze_call", 1)

    clock.advance(timedelta(seconds=2))
    progress.message_started("job-1", first)
    progress.message_succeeded("job-1", first, children=[second])
    progress.message_started("job-1", second)
    assert observer.completed == []
    clock.advance(timedelta(seconds=1.5))
    progress.message_succeeded("job-1", second)
    # Delivered again: the job stays completed and is not observed twice.
    progress.message_started("job-1", second)
    progress.message_succeeded("job-1", second)

    assert observer.completed == [("post_call", 3.5)]
