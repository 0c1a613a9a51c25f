from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from contracts import HealthAnswer
from contracts.values import CallLogEntry
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.engine import create_engine
from infra.store.job_views import SqlJobQueries
from infra.store.migrate import (
    DatabaseNotMigrated,
    _config,
    current_revision,
    ensure_migrated,
    head_revision,
    upgrade,
)
from infra.store.progress import SqlJobProgress
from infra.store.records import CallbackRecord, MessageRef
from infra.store.tables import JOB_MESSAGES, JOBS
from infra.store.tenants import SqlTenantDirectory
from tests.builders import (
    make_analysis,
    make_analyzed,
    make_health_check_job,
    make_indexed,
    make_post_call_job,
    make_transcribed,
)


def test_ensure_migrated_names_the_database_and_the_fix_on_an_empty_database(
    empty_db_url: str,
) -> None:
    engine = create_engine(empty_db_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(DatabaseNotMigrated) as caught:
            ensure_migrated(engine)
    finally:
        engine.dispose()

    message = str(caught.value)
    assert "is not migrated (at empty, need " in message
    assert head_revision() in message
    assert "run `switchboard db upgrade`" in message
    assert empty_db_url.split("/")[-1] in message


def test_ensure_migrated_passes_after_upgrade_and_upgrade_is_idempotent(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No alembic.ini anywhere: the migrations are found from any working directory.
    monkeypatch.chdir(tmp_path)
    upgrade(empty_db_url)
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        ensure_migrated(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_sqlmodel_tables(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)

    assert differences == []


def test_every_table_is_created_by_the_migration(engine: sa.Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())

    assert set(SQLModel.metadata.tables) <= names


# -- 0001 → 0002: the data of a database at the initial revision survives the upgrade --

OLD = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
DUE = datetime(2026, 2, 2, 17, 0, tzinfo=UTC)
ANALYSIS = make_analysis(callback={"due_at": DUE, "reason": "asked"})


def _upgrade_to(url: str, revision: str) -> None:
    """Migrate to ``revision`` as ``infra.store.migrate.upgrade`` does to the head."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _fill_0001(url: str) -> None:
    """A tenant with a general call (two steps, logged, a callback) and a health check."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)
            assert "job_steps" in tables.tables  # the 0001 schema, not the current one
            rows: list[tuple[str, list[dict[str, Any]]]] = [
                (
                    "tenants",
                    [
                        {
                            "id": "t-acme",
                            "name": "acme",
                            "timezone": "Europe/Paris",
                            "api_key_hash": "0" * 64,
                            "created_at": OLD,
                        }
                    ],
                ),
                (
                    "jobs",
                    [
                        _old_job("job-1", "general", "PostCallJobData", "failed"),
                        _old_job("job-2", "health_check", "HealthCheckJobData", "completed"),
                    ],
                ),
                (
                    "job_steps",
                    [
                        _old_step("job-1", "analyze_call", "failed", 3, "PermanentError: boom"),
                        _old_step("job-1", "fetch_transcript", "completed", 1, None),
                        _old_step("job-2", "record_health_check", "completed", 1, None),
                    ],
                ),
                (
                    "call_logs",
                    [
                        {
                            "conversation_id": "conv-1",
                            "tenant_id": "t-acme",
                            "agent_id": "agent_1",
                            "job_id": "job-1",
                            "summary": ANALYSIS.summary,
                            "topics": list(ANALYSIS.topics),
                            "sentiment": ANALYSIS.sentiment,
                            "analysis": ANALYSIS.model_dump(mode="json"),
                            "duration_secs": 95,
                            "call_status": "done",
                            "started_at": OLD,
                            "created_at": OLD,
                            "updated_at": OLD,
                        }
                    ],
                ),
                (
                    "callbacks",
                    [
                        {
                            "tenant_id": "t-acme",
                            "conversation_id": "conv-1",
                            "due_at": DUE,
                            "reason": "asked",
                            "status": "scheduled",
                            "created_at": OLD,
                        }
                    ],
                ),
                (
                    "health_answers",
                    [
                        {
                            "conversation_id": "conv-2",
                            "question": "sleep",
                            "tenant_id": "t-acme",
                            "answer": "seven",
                            "value": 7.0,
                            "unit": "hours",
                            "created_at": OLD,
                        }
                    ],
                ),
            ]
            for name, values in rows:
                conn.execute(tables.tables[name].insert(), values)
    finally:
        engine.dispose()


def _old_job(job_id: str, kind: str, contract: str, status: str) -> dict[str, Any]:
    conversation = "conv-1" if kind == "general" else "conv-2"
    builder = make_post_call_job if kind == "general" else make_health_check_job
    payload = builder(job_id=job_id, tenant_id="t-acme", conversation_id=conversation)
    return {
        "id": job_id,
        "source": "elevenlabs",
        "external_id": conversation,
        "tenant_id": "t-acme",
        "kind": kind,
        "contract": contract,
        "payload": payload.model_dump(mode="json", exclude={"correlation_id"}),
        "correlation_id": conversation,
        "status": status,
        "error": "PermanentError: boom" if status == "failed" else None,
        "published_at": OLD,
        "created_at": OLD,
        "updated_at": OLD,
    }


def _old_step(
    job_id: str, name: str, status: str, attempts: int, error: str | None
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "name": name,
        "status": status,
        "attempts": attempts,
        "error": error,
        "started_at": OLD,
        "updated_at": OLD,
    }


def _migrated_0001(empty_db_url: str) -> sa.Engine:
    _upgrade_to(empty_db_url, "0001")
    _fill_0001(empty_db_url)
    upgrade(empty_db_url)
    return create_engine(empty_db_url)


def test_an_upgrade_from_0001_keeps_jobs_and_their_steps_in_the_new_shape(
    empty_db_url: str,
) -> None:
    engine = _migrated_0001(empty_db_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            jobs = conn.execute(sa.select(JOBS).order_by(JOBS.c.id)).all()
            messages = conn.execute(
                sa.select(JOB_MESSAGES).order_by(JOB_MESSAGES.c.job_id, JOB_MESSAGES.c.position)
            ).all()
        view = SqlJobQueries(engine).job_view("job-1", tenant_id="t-acme")
    finally:
        engine.dispose()

    assert [
        (j.id, j.kind, j.dedupe_key, j.messages_total, j.messages_completed, j.messages_failed)
        for j in jobs
    ] == [
        ("job-1", "post_call", "elevenlabs/t-acme/conv-1", 2, 1, 1),
        ("job-2", "health_check", "elevenlabs/t-acme/conv-2", 1, 1, 0),
    ]
    assert [(j.status, j.redrives, j.request_hash) for j in jobs] == [
        ("failed", 0, None),
        ("completed", 0, None),
    ]
    assert [
        (m.job_id, m.key, m.name, m.position, m.status, m.attempts, m.error, m.parent_key)
        for m in messages
    ] == [
        (
            "job-1",
            "post-call:t-acme:conv-1",
            "fetch_transcript",
            0,
            "completed",
            1,
            None,
            None,
        ),
        (
            "job-1",
            "call-transcribed:t-acme:conv-1",
            "analyze_call",
            1,
            "failed",
            3,
            "PermanentError: boom",
            "post-call:t-acme:conv-1",
        ),
        (
            "job-2",
            "health-check:t-acme:conv-2",
            "record_health_check",
            0,
            "completed",
            1,
            None,
            None,
        ),
    ]
    assert all(m.started_at == OLD and m.updated_at == OLD for m in messages)
    assert view is not None
    assert (view.kind, view.status, view.tenant_name) == ("post_call", "failed", "acme")
    assert [(s.name, s.status, s.attempts) for s in view.steps] == [
        ("fetch_transcript", "completed", 1),
        ("analyze_call", "failed", 3),
    ]


def test_an_upgrade_from_0001_keeps_call_rows_readable_per_tenant(empty_db_url: str) -> None:
    engine = _migrated_0001(empty_db_url)
    try:
        store = SqlCallStore(engine)
        log = store.get_call_log("t-acme", "conv-1")
        answered = store.has_health_answers("t-acme", "conv-2")
        [general] = SqlCallQueries(engine).find_calls("conv-1", tenant_id=None)
        [health] = SqlCallQueries(engine).find_calls("conv-2", tenant_id="t-acme")
        # The new keys hold: another tenant may now store the same conversation ids.
        other, _ = SqlTenantDirectory(engine).add_tenant("globex")
        store.save_call_log(
            CallLogEntry(
                tenant_id=other.id,
                conversation_id="conv-1",
                agent_id="agent_9",
                job_id="job-9",
                analysis=make_analysis(),
            )
        )
        second_callback = store.schedule_callback(
            tenant_id=other.id, conversation_id="conv-1", due_at=DUE, reason="globex"
        )
        replayed_callback = store.schedule_callback(
            tenant_id="t-acme", conversation_id="conv-1", due_at=DUE, reason="again"
        )
        store.save_health_answers(
            tenant_id=other.id,
            conversation_id="conv-2",
            answers=[HealthAnswer(question="sleep", answer="five")],
        )
        ours_after = store.get_call_log("t-acme", "conv-1")
        [health_after] = SqlCallQueries(engine).find_calls("conv-2", tenant_id="t-acme")
    finally:
        engine.dispose()

    assert log == CallLogEntry(
        tenant_id="t-acme",
        conversation_id="conv-1",
        agent_id="agent_1",
        job_id="job-1",
        analysis=ANALYSIS,
        duration_secs=95,
        call_status="done",
        started_at=OLD,
    )
    assert answered is True
    assert (general.job_id, general.kind, general.tenant_name) == ("job-1", "general", "acme")
    assert general.analysis == ANALYSIS
    assert general.callback == CallbackRecord(due_at=DUE, reason="asked", status="scheduled")
    assert (health.job_id, health.kind) == ("job-2", "health_check")
    assert health.health_answers == [
        HealthAnswer(question="sleep", answer="seven", value=7.0, unit="hours")
    ]
    assert (second_callback, replayed_callback) == (True, False)
    assert ours_after == log
    assert health_after.health_answers == health.health_answers


def test_a_job_dead_lettered_before_the_upgrade_completes_when_its_message_is_replayed(
    empty_db_url: str,
) -> None:
    engine = _migrated_0001(empty_db_url)
    try:
        progress = SqlJobProgress(engine)
        call = {"job_id": "job-1", "tenant_id": "t-acme", "conversation_id": "conv-1"}
        # The refs the actor shell reports for the replayed message and what follows it.
        analyze = MessageRef(make_transcribed(**call).idempotency_key, "analyze_call", 1)
        index = MessageRef(make_analyzed(**call).idempotency_key, "index_call", 2)
        persist = MessageRef(make_indexed(**call).idempotency_key, "persist_call", 3)
        progress.message_started("job-1", analyze)
        progress.message_succeeded("job-1", analyze, children=[index])
        progress.message_started("job-1", index)
        progress.message_succeeded("job-1", index, children=[persist])
        progress.message_started("job-1", persist)
        progress.message_succeeded("job-1", persist)
        view = SqlJobQueries(engine).job_view("job-1", tenant_id=None)
    finally:
        engine.dispose()

    assert view is not None
    assert [(s.name, s.status) for s in view.steps] == [
        ("fetch_transcript", "completed"),
        ("analyze_call", "completed"),
        ("index_call", "completed"),
        ("persist_call", "completed"),
    ]
    assert view.status == "completed"
