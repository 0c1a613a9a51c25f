from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from contracts import CallAnalysis, HealthAnswer
from contracts.errors import PermanentError
from contracts.values import CallLogEntry
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.jobs import SqlJobLedger, SqlJobProgress
from infra.store.records import CallbackRecord, Tenant
from infra.store.tables import CALL_LOGS, HEALTH_ANSWERS
from infra.store.tenants import SqlTenantDirectory

IST = timezone(timedelta(hours=5, minutes=30))
STARTED_AT = datetime(2026, 3, 2, 15, 0, tzinfo=IST)


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


def _accept(engine: sa.Engine, tenant: Tenant, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "source": "elevenlabs",
        "external_id": "evt-1",
        "tenant_id": tenant.id,
        "kind": "general",
        "contract": "PostCallJobData",
        "payload": {"conversation_id": "conv-1", "duration_secs": 61},
        "correlation_id": "conv-1",
        "job_id": "job-1",
    }
    return SqlJobLedger(engine).accept(**(fields | overrides)).job_id


def test_a_call_log_reads_back_equal_with_aware_utc_datetimes(
    engine: sa.Engine, tenant: Tenant
) -> None:
    store = SqlCallStore(engine)
    entry = _entry(tenant)

    store.save_call_log(entry)
    loaded = store.get_call_log("conv-1")

    assert loaded == entry
    assert loaded is not None
    assert loaded.started_at is not None
    assert loaded.started_at.utcoffset() == timedelta(0)
    assert loaded.started_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert loaded.analysis.callback is not None
    assert loaded.analysis.callback.due_at == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert store.get_call_log("conv-unknown") is None


def test_saving_a_call_log_again_updates_the_one_row(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)
    store.save_call_log(_entry(tenant))

    updated = _entry(tenant, analysis=_analysis(sentiment="positive", callback=None))
    store.save_call_log(updated)

    assert store.get_call_log("conv-1") == updated
    with engine.connect() as conn:
        rows = conn.execute(sa.select(CALL_LOGS.c.sentiment, CALL_LOGS.c.topics)).all()
    assert [tuple(row) for row in rows] == [("positive", ["billing", "meter reading"])]


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
    view = SqlCallQueries(engine).call_view("conv-1", tenant_id=None)
    assert view is not None
    assert view.callback == CallbackRecord(due_at=due, reason="asked", status="scheduled")
    assert view.callback.due_at.tzinfo is not None


def test_health_answers_are_upserted_per_question(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)
    assert store.has_health_answers("conv-h") is False

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

    assert store.has_health_answers("conv-h") is True
    assert store.has_health_answers("conv-other") is False
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                HEALTH_ANSWERS.c.question, HEALTH_ANSWERS.c.answer, HEALTH_ANSWERS.c.value
            ).order_by(HEALTH_ANSWERS.c.question)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("bp", "a bit high", 135.0),
        ("pain", "none", None),
        ("sleep", "seven", 7.0),
    ]


def test_saving_no_health_answers_records_nothing(engine: sa.Engine, tenant: Tenant) -> None:
    store = SqlCallStore(engine)

    store.save_health_answers(tenant_id=tenant.id, conversation_id="conv-h", answers=[])

    assert store.has_health_answers("conv-h") is False


def test_a_call_view_gathers_job_steps_analysis_callback_and_tenant(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(engine, tenant)
    progress = SqlJobProgress(engine)
    for step in ("persist_call", "fetch_transcript", "custom_step", "analyze_call"):
        progress.step_started("job-1", step)
        progress.step_succeeded("job-1", step, final=False)
    store = SqlCallStore(engine)
    store.save_call_log(_entry(tenant))
    store.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=STARTED_AT, reason="asked"
    )

    view = SqlCallQueries(engine).call_view("conv-1", tenant_id=tenant.id)

    assert view is not None
    assert (view.job_id, view.tenant_id, view.tenant_name) == ("job-1", tenant.id, "acme")
    assert (view.kind, view.status) == ("general", "processing")
    assert [step.name for step in view.steps] == [
        "fetch_transcript",
        "analyze_call",
        "persist_call",
        "custom_step",
    ]
    assert all(step.status == "completed" and step.attempts == 1 for step in view.steps)
    assert view.analysis == _analysis()
    assert view.duration_secs == 95
    assert view.callback is not None
    assert view.health_answers == []


def test_a_call_view_before_persistence_takes_the_duration_from_the_job(
    engine: sa.Engine, tenant: Tenant
) -> None:
    _accept(engine, tenant)

    view = SqlCallQueries(engine).call_view("conv-1", tenant_id=None)

    assert view is not None
    assert (view.status, view.steps, view.analysis) == ("queued", [], None)
    assert view.duration_secs == 61
    assert view.callback is None


def test_a_call_view_of_a_health_check_lists_its_answers(engine: sa.Engine, tenant: Tenant) -> None:
    _accept(engine, tenant, kind="health_check", contract="HealthCheckJobData", payload={})
    answers = [HealthAnswer(question="sleep", answer="seven", value=7, unit="hours")]
    SqlCallStore(engine).save_health_answers(
        tenant_id=tenant.id, conversation_id="conv-1", answers=answers
    )

    view = SqlCallQueries(engine).call_view("conv-1", tenant_id=tenant.id)

    assert view is not None
    assert view.kind == "health_check"
    assert view.health_answers == answers
    assert view.duration_secs is None


def test_another_tenants_call_is_invisible(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    _accept(engine, tenant)
    queries = SqlCallQueries(engine)

    assert queries.call_view("conv-1", tenant_id=other.id) is None
    assert queries.call_view("conv-unknown", tenant_id=None) is None
    assert queries.call_view("conv-1", tenant_id=tenant.id) is not None


def test_the_latest_job_of_a_conversation_describes_it(engine: sa.Engine, tenant: Tenant) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    ledger = SqlJobLedger(engine, clock=lambda: an_hour_ago)
    ledger.accept(
        source="elevenlabs",
        external_id="evt-1",
        tenant_id=tenant.id,
        kind="general",
        contract="PostCallJobData",
        payload={},
        correlation_id="conv-1",
        job_id="job-old",
    )
    _accept(engine, tenant, external_id="evt-2", job_id="job-new")

    view = SqlCallQueries(engine).call_view("conv-1", tenant_id=None)

    assert view is not None
    assert view.job_id == "job-new"


def test_call_views_keep_the_given_order_and_skip_unknown_and_foreign_calls(
    engine: sa.Engine, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    _accept(engine, tenant, external_id="e1", job_id="j1", correlation_id="conv-a")
    _accept(engine, tenant, external_id="e2", job_id="j2", correlation_id="conv-b")
    _accept(engine, other, external_id="e3", job_id="j3", correlation_id="conv-c")

    views = SqlCallQueries(engine).call_views(
        ["conv-b", "conv-missing", "conv-c", "conv-a"], tenant_id=tenant.id
    )

    assert [view.conversation_id for view in views] == ["conv-b", "conv-a"]
    assert [view.job_id for view in views] == ["j2", "j1"]
