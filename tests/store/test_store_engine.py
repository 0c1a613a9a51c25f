from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts.errors import PermanentError, TransientError
from infra.store.engine import create_engine, ping, redact, transaction
from infra.store.tables import AGENTS


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
    finally:
        engine.dispose()

    assert path.exists()
    assert (journal, busy, foreign_keys) == ("wal", 5000, 1)


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
