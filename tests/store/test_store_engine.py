from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from contracts.errors import PermanentError, TransientError
from contracts.values import CallLogEntry
from infra.store.calls import SqlCallStore
from infra.store.engine import create_engine, ping, redact, transaction
from infra.store.records import Tenant
from infra.store.tables import AGENTS
from tests.builders import make_analysis


def test_postgres_urls_use_the_psycopg_driver() -> None:
    for url in ("postgres://u@127.0.0.1/db", "postgresql://u@127.0.0.1/db"):
        engine = create_engine(url)
        try:
            assert engine.url.drivername == "postgresql+psycopg"
            assert engine.url.database == "db"
        finally:
            engine.dispose()


def test_redact_hides_the_password_and_keeps_the_rest() -> None:
    shown = redact("postgresql+psycopg://app:s3cret@db.internal:5432/switchboard")

    assert "s3cret" not in shown
    assert "app" in shown
    assert "db.internal:5432/switchboard" in shown


def test_redact_does_not_echo_an_unparseable_url() -> None:
    assert redact("not a url with a s3cret") == "<unparseable database url>"


def test_a_sqlite_file_gets_its_directory_wal_busy_timeout_and_foreign_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "dir" / "switchboard.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            journal = conn.execute(sa.text("PRAGMA journal_mode")).scalar_one()
            busy = conn.execute(sa.text("PRAGMA busy_timeout")).scalar_one()
            foreign_keys = conn.execute(sa.text("PRAGMA foreign_keys")).scalar_one()
            synchronous = conn.execute(sa.text("PRAGMA synchronous")).scalar_one()
    finally:
        engine.dispose()

    assert path.exists()
    assert (journal, busy, foreign_keys, synchronous) == ("wal", 5000, 1, 1)  # 1 = NORMAL


def test_ping_succeeds_on_a_reachable_database(engine: sa.Engine) -> None:
    ping(engine)


@pytest.mark.postgres
def test_ping_raises_a_transient_error_when_postgres_is_unreachable() -> None:
    # Port 1 on loopback refuses at once: no wait for the connect timeout.
    engine = create_engine(f"postgresql://app:s3cret@127.0.0.1:1/{uuid.uuid4().hex}")
    try:
        with pytest.raises(TransientError, match="unavailable") as caught:
            ping(engine)
    finally:
        engine.dispose()
    assert "s3cret" not in str(caught.value)


def test_a_rejected_write_becomes_a_permanent_error(engine: sa.Engine) -> None:
    with pytest.raises(PermanentError, match="rejected"), transaction(engine) as conn:
        conn.execute(sa.insert(AGENTS).values(agent_id="a", tenant_id="nobody", kind="general"))

    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(AGENTS)).scalar_one() == 0


@pytest.mark.parametrize(
    "value",
    [{"duration_secs": 2**63}, {"call_status": "do\x00ne"}, {"call_status": "lone \ud800"}],
)
def test_a_value_the_database_cannot_store_is_a_permanent_error_not_a_retry(
    engine: sa.Engine, tenant: Tenant, value: dict[str, Any]
) -> None:
    # Contracts refuse these at intake; this is the second line, for anything else.
    if engine.dialect.name == "sqlite" and "\x00" in str(value.get("call_status")):
        pytest.skip("SQLite stores NUL in text; only PostgreSQL refuses it")
    entry = CallLogEntry.model_construct(
        tenant_id=tenant.id,
        conversation_id="conv-1",
        agent_id="agent-1",
        job_id="job-1",
        analysis=make_analysis(),
        **({"duration_secs": None, "call_status": None, "started_at": None} | value),
    )

    with pytest.raises(PermanentError, match="database"):
        SqlCallStore(engine).save_call_log(entry)
