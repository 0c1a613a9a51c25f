from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import infra.store.tables  # noqa: F401  (the tables must be on the metadata compared)
from infra.store.engine import create_engine
from infra.store.migrate import (
    DatabaseNotMigrated,
    current_revision,
    ensure_migrated,
    head_revision,
    upgrade,
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
