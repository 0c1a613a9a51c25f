from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from contracts import CallAnalysis, Contract, HealthAnswer, Route
from contracts.errors import PermanentError
from contracts.values import CallLogEntry
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.jobs import SqlJobLedger, utc_now
from infra.store.progress import SqlJobProgress
from infra.store.records import CallbackRecord, InboxEntry, MessageRef, Tenant
from infra.store.tables import CALL_LOGS, CALLBACKS, HEALTH_ANSWERS
from infra.store.tenants import SqlTenantDirectory
from tests.builders import make_health_check_job, make_post_call_job

IST = timezone(timedelta(hours=5, minutes=30))
STARTED_AT = datetime(2026, 3, 2, 15, 0, tzinfo=IST)


class DailyCallsTick(Contract):
    """A job of another workflow, correlated by an id that happens to be a conversation's."""

    route: ClassVar[Route] = Route(queue="ticks.daily", actor="emit_daily_calls")

    @property
    def idempotency_key(self) -> str:
        return f"daily-calls:{self.correlation_id}"


def _analysis(**overrides: Any) -> CallAnalysis:
    fields: dict[str, Any] = {
        "summary": "The caller disputes an estimated meter reading.",
        "topics": ["billing", "meter reading"],
        "sentiment": "negative",
        "callback": {"due_at": "2026-03-03T17:00:00+01:00", "reason": "wants a call back"},
        "analyzer": "local",
    }
    return CallAnalysis.model_validate(fields | overrides)


def _entry(tenant: Tenant, **overrides: Any) -> CallLogEntry:
    fields: dict[str, Any] = {
        "tenant_id": tenant.id,
        "conversation_id": "conv-1",
        "agent_id": "agent_1",
        "job_id": "job-1",
        "analysis": _analysis(),
        "duration_secs": 95,
        "call_status": "done",
        "started_at": STARTED_AT,
    }
    return CallLogEntry.model_validate(fields | overrides)


def _accept(
    engine: sa.Engine,
    tenant: Tenant,
    *,
    job_id: str = "job-1",
    conversation_id: str = "conv-1",
    external_id: str | None = None,
    kind: str = "post_call",
    clock: Callable[[], datetime] = utc_now,
) -> str:
    """Accept a call job of ``kind`` for the tenant's conversation; return its id."""
    contract: Contract
    if kind == "health_check":
        contract = make_health_check_job(
            job_id=job_id, tenant_id=tenant.id, conversation_id=conversation_id
        )
    else:
        contract = make_post_call_job(
            job_id=job_id, tenant_id=tenant.id, conversation_id=conversation_id, duration_secs=61
        )
    entry = InboxEntry(
        source="elevenlabs",
        external_id=external_id or conversation_id,
        tenant_id=tenant.id,
        kind=kind,
        contract=contract,
    )
    return SqlJobLedger(engine, clock=clock).accept(entry).job_id


def _rows(engine: sa.Engine, *columns: sa.ColumnElement[Any]) -> list[tuple[Any, ...]]:
    """Every row's ``columns``, ordered by the first (unique in each test's rows)."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(*columns).order_by(columns[0]))]


def test_a_call_log_reads_back_equal_with_aware_utc_datetimes(
    engine: sa.Engine, tenant: Tenant
) -> None:
    store = SqlCallStore(engine)
    entry = _entry(tenant)

    store.save_call_log(entry)
    loaded = store.get_call_log(tenant.id, "conv-1")

    assert loaded == entry
    assert loaded is not None
    assert loaded.started_at is not None
    assert loaded.started_at.utcoffset() == timedelta(0)
    assert loaded.started_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert loaded.analysis.callback is not None
    assert loaded.analysis.callback.due_at == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert store.get_call_log(tenant.id, "conv-unknown") is None
    assert store.get_call_log("another-tenant", "conv-1") is None


def test_saving_a_call_log_again_updates_the_one_row(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)
    store.save_call_log(_entry(tenant))

    updated = _entry(tenant, analysis=_analysis(sentiment="positive", callback=None))
    store.save_call_log(updated)

    assert store.get_call_log(tenant.id, "conv-1") == updated
    rows = _rows(engine, CALL_LOGS.c.tenant_id, CALL_LOGS.c.sentiment, CALL_LOGS.c.topics)
    assert rows == [(tenant.id, "positive", ["billing", "meter reading"])]


def test_a_call_log_of_an_unknown_tenant_is_a_permanent_error(engine: sa.Engine) -> None:
    store = SqlCallStore(engine)
    ghost = Tenant(id="ghost", name="ghost", timezone="UTC", created_at=datetime.now(UTC))

    with pytest.raises(PermanentError):
        store.save_call_log(_entry(ghost))


def test_a_callback_is_scheduled_once_per_conversation(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)
    due = datetime(2026, 3, 3, 17, 0, tzinfo=IST)
    _accept(engine, tenant)

    first = store.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=due, reason="asked"
    )
    second = store.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=due + timedelta(days=1), reason="x"
    )

    assert (first, second) == (True, False)
    [view] = SqlCallQueries(engine).find_calls("conv-1", tenant_id=None)
    assert view.callback == CallbackRecord(due_at=due, reason="asked", status="scheduled")
    assert view.callback.due_at.tzinfo is not None


def test_health_answers_are_upserted_per_question(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)
    assert store.has_health_answers(tenant.id, "conv-h") is False

    store.save_health_answers(
        tenant_id=tenant.id,
        conversation_id="conv-h",
        answers=[
            HealthAnswer(question="sleep", answer="about six hours", value=6, unit="hours"),
            HealthAnswer(question="pain", answer="none"),
        ],
    )
    store.save_health_answers(
        tenant_id=tenant.id,
        conversation_id="conv-h",
        answers=[
            HealthAnswer(question="sleep", answer="seven", value=7, unit="hours"),
            HealthAnswer(question="bp", answer="fine", value=120, unit="mmHg"),
            HealthAnswer(question="bp", answer="a bit high", value=135, unit="mmHg"),
        ],
    )

    assert store.has_health_answers(tenant.id, "conv-h") is True
    assert store.has_health_answers(tenant.id, "conv-other") is False
    assert store.has_health_answers("another-tenant", "conv-h") is False
    assert _rows(
        engine, HEALTH_ANSWERS.c.question, HEALTH_ANSWERS.c.answer, HEALTH_ANSWERS.c.value
    ) == [
        ("bp", "a bit high", 135.0),
        ("pain", "none", None),
        ("sleep", "seven", 7.0),
    ]


def test_saving_no_health_answers_records_nothing(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)

    store.save_health_answers(tenant_id=tenant.id, conversation_id="conv-h", answers=[])

    assert store.has_health_answers(tenant.id, "conv-h") is False


def test_two_tenants_with_one_conversation_id_keep_separate_call_rows(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    store = SqlCallStore(engine)
    due = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    ours = _entry(tenant)
    theirs = _entry(other, agent_id="agent_9", job_id="job-9", analysis=_analysis(topics=["tv"]))

    store.save_call_log(ours)
    store.save_call_log(theirs)
    scheduled = [
        store.schedule_callback(
            tenant_id=owner.id, conversation_id="conv-1", due_at=due, reason=owner.name
        )
        for owner in (tenant, other)
    ]
    for owner, answer in ((tenant, "six"), (other, "eight")):
        store.save_health_answers(
            tenant_id=owner.id,
            conversation_id="conv-1",
            answers=[HealthAnswer(question="sleep", answer=answer)],
        )

    assert scheduled == [True, True]
    assert store.get_call_log(tenant.id, "conv-1") == ours
    assert store.get_call_log(other.id, "conv-1") == theirs
    assert _rows(engine, CALLBACKS.c.tenant_id, CALLBACKS.c.reason) == sorted(
        [(tenant.id, "acme"), (other.id, "globex")]
    )
    assert _rows(engine, HEALTH_ANSWERS.c.tenant_id, HEALTH_ANSWERS.c.answer) == sorted(
        [(tenant.id, "six"), (other.id, "eight")]
    )


def test_a_replay_for_one_tenant_leaves_the_other_tenants_rows_alone(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    store = SqlCallStore(engine)
    due = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    theirs = _entry(other, job_id="job-9")
    store.save_call_log(_entry(tenant))
    store.save_call_log(theirs)
    for owner in (tenant, other):
        store.schedule_callback(
            tenant_id=owner.id, conversation_id="conv-1", due_at=due, reason=owner.name
        )
        store.save_health_answers(
            tenant_id=owner.id,
            conversation_id="conv-1",
            answers=[HealthAnswer(question="sleep", answer=f"{owner.name} slept")],
        )

    replayed = _entry(tenant, analysis=_analysis(sentiment="positive", callback=None))
    store.save_call_log(replayed)
    again = store.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=due + timedelta(days=1), reason="x"
    )
    store.save_health_answers(
        tenant_id=tenant.id,
        conversation_id="conv-1",
        answers=[HealthAnswer(question="sleep", answer="replayed")],
    )

    assert again is False
    assert store.get_call_log(tenant.id, "conv-1") == replayed
    assert store.get_call_log(other.id, "conv-1") == theirs
    assert _rows(engine, CALLBACKS.c.tenant_id, CALLBACKS.c.due_at, CALLBACKS.c.reason) == sorted(
        [(tenant.id, due, "acme"), (other.id, due, "globex")]
    )
    assert _rows(engine, HEALTH_ANSWERS.c.tenant_id, HEALTH_ANSWERS.c.answer) == sorted(
        [(tenant.id, "replayed"), (other.id, "globex slept")]
    )


def test_a_call_view_gathers_steps_in_position_order_analysis_callback_and_tenant(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(engine, tenant)
    progress = SqlJobProgress(engine)
    first = MessageRef(f"post-call:{tenant.id}:conv-1", "fetch_transcript", 0)
    analyze = MessageRef(f"call-transcribed:{tenant.id}:conv-1", "analyze_call", 1)
    index = MessageRef(f"call-analyzed:{tenant.id}:conv-1", "index_call", 2)
    persist = MessageRef(f"call-indexed:{tenant.id}:conv-1", "persist_call", 3)
    late = MessageRef("custom:1", "custom_step", 9)
    # Reported out of pipeline order: the view orders steps by position, not by time.
    for message in (persist, late, first, analyze):
        progress.message_started("job-1", message)
    progress.message_succeeded("job-1", persist)
    progress.message_succeeded("job-1", late)
    progress.message_succeeded("job-1", first, children=[analyze])
    progress.message_succeeded("job-1", analyze, children=[index])
    store = SqlCallStore(engine)
    store.save_call_log(_entry(tenant))
    store.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=STARTED_AT, reason="asked"
    )

    [view] = SqlCallQueries(engine).find_calls("conv-1", tenant_id=tenant.id)

    assert (view.job_id, view.tenant_id, view.tenant_name) == ("job-1", tenant.id, "acme")
    assert (view.kind, view.status) == ("general", "processing")
    assert [(step.name, step.status, step.attempts) for step in view.steps] == [
        ("fetch_transcript", "completed", 1),
        ("analyze_call", "completed", 1),
        ("index_call", "queued", 0),
        ("persist_call", "completed", 1),
        ("custom_step", "completed", 1),
    ]
    assert view.analysis == _analysis()
    assert view.duration_secs == 95
    assert view.callback == CallbackRecord(due_at=STARTED_AT, reason="asked", status="scheduled")
    assert view.health_answers == []


def test_a_call_view_before_persistence_takes_the_duration_from_the_job(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(engine, tenant)

    [view] = SqlCallQueries(engine).find_calls("conv-1", tenant_id=None)

    assert (view.status, view.analysis, view.callback) == ("queued", None, None)
    assert [(step.name, step.status, step.attempts) for step in view.steps] == [
        ("fetch_transcript", "queued", 0)
    ]
    assert view.duration_secs == 61


def test_a_call_view_of_a_health_check_lists_its_answers(engine: sa.Engine, tenant: Tenant) -> None:
    _accept(engine, tenant, kind="health_check")
    answers = [HealthAnswer(question="sleep", answer="seven", value=7, unit="hours")]
    SqlCallStore(engine).save_health_answers(
        tenant_id=tenant.id, conversation_id="conv-1", answers=answers
    )

    [view] = SqlCallQueries(engine).find_calls("conv-1", tenant_id=tenant.id)

    assert view.kind == "health_check"
    assert [step.name for step in view.steps] == ["record_health_check"]
    assert view.health_answers == answers
    assert view.duration_secs is None


def test_another_tenants_call_is_invisible(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    _accept(engine, tenant)
    queries = SqlCallQueries(engine)

    assert queries.find_calls("conv-1", tenant_id=other.id) == []
    assert queries.find_calls("conv-unknown", tenant_id=None) == []
    assert [view.tenant_id for view in queries.find_calls("conv-1", tenant_id=tenant.id)] == [
        tenant.id
    ]


def test_the_latest_job_of_a_conversation_describes_it(engine: sa.Engine, tenant: Tenant) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    _accept(
        engine,
        tenant,
        external_id="idempotency-key:k1",
        job_id="job-old",
        clock=lambda: an_hour_ago,
    )
    _accept(engine, tenant, external_id="idempotency-key:k2", job_id="job-new")

    views = SqlCallQueries(engine).find_calls("conv-1", tenant_id=None)

    assert [view.job_id for view in views] == ["job-new"]


def test_find_calls_returns_the_newest_call_of_every_tenant_that_has_it_by_tenant_name(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    globex, _ = tenants.add_tenant("globex")
    bravo, _ = tenants.add_tenant("bravo")
    tenants.add_tenant("initech")  # has no call with this id
    now = datetime.now(UTC)
    earlier = now - timedelta(minutes=5)
    _accept(engine, globex, job_id="globex-old", external_id="e1", clock=lambda: earlier)
    _accept(engine, globex, job_id="globex-new", external_id="e2", clock=lambda: now)
    _accept(engine, bravo, job_id="bravo-new", external_id="e3", clock=lambda: now)
    _accept(engine, bravo, job_id="bravo-old", external_id="e4", clock=lambda: earlier)
    _accept(engine, tenant, job_id="acme-only", kind="health_check", clock=lambda: earlier)
    _accept(engine, tenant, job_id="acme-other-call", conversation_id="conv-2")
    queries = SqlCallQueries(engine)

    views = queries.find_calls("conv-1", tenant_id=None)
    scoped = queries.find_calls("conv-1", tenant_id=bravo.id)

    assert [(v.tenant_name, v.job_id, v.kind) for v in views] == [
        ("acme", "acme-only", "health_check"),
        ("bravo", "bravo-new", "general"),
        ("globex", "globex-new", "general"),
    ]
    assert {view.conversation_id for view in views} == {"conv-1"}
    assert [(v.tenant_id, v.job_id) for v in scoped] == [(bravo.id, "bravo-new")]


def test_each_tenants_view_of_a_shared_conversation_shows_only_its_own_rows(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    _accept(engine, tenant, job_id="job-a")
    _accept(engine, other, job_id="job-b")
    store = SqlCallStore(engine)
    store.save_call_log(_entry(tenant, job_id="job-a"))
    store.schedule_callback(
        tenant_id=other.id, conversation_id="conv-1", due_at=STARTED_AT, reason="globex asked"
    )

    acme, globex = SqlCallQueries(engine).find_calls("conv-1", tenant_id=None)

    assert (acme.tenant_name, acme.analysis, acme.duration_secs, acme.callback) == (
        "acme",
        _analysis(),
        95,
        None,
    )
    assert (globex.tenant_name, globex.analysis, globex.duration_secs) == ("globex", None, 61)
    assert globex.callback is not None
    assert globex.callback.reason == "globex asked"


def test_a_job_of_another_kind_is_not_a_call_even_with_a_conversations_id(
    engine: sa.Engine, tenant: Tenant
) -> None:
    tick = DailyCallsTick(job_id="job-tick", tenant_id=tenant.id, correlation_id="conv-1")
    SqlJobLedger(engine).accept(
        InboxEntry(
            source="scheduler",
            external_id="daily:2026-03-02",
            tenant_id=tenant.id,
            kind="daily_calls",
            contract=tick,
        )
    )
    queries = SqlCallQueries(engine)

    assert queries.find_calls("conv-1", tenant_id=None) == []
    assert queries.call_views(["conv-1"], tenant_id=tenant.id) == []

    _accept(engine, tenant, job_id="job-call")
    assert [view.job_id for view in queries.find_calls("conv-1", tenant_id=None)] == ["job-call"]


def test_call_views_keep_the_given_order_and_skip_unknown_and_foreign_calls(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    _accept(engine, tenant, job_id="j1", conversation_id="conv-a")
    _accept(engine, tenant, job_id="j2", conversation_id="conv-b")
    _accept(engine, other, job_id="j3", conversation_id="conv-c")
    _accept(engine, other, job_id="j4", conversation_id="conv-a")

    views = SqlCallQueries(engine).call_views(
        ["conv-b", "conv-missing", "conv-c", "conv-a"], tenant_id=tenant.id
    )

    assert [view.conversation_id for view in views] == ["conv-b", "conv-a"]
    assert [view.job_id for view in views] == ["j2", "j1"]
    assert SqlCallQueries(engine).call_views([], tenant_id=tenant.id) == []
