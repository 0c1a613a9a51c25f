"""Alembic migrations, run in code: no ``alembic.ini``, any working directory.

The migration scripts ship inside the package (``infra/store/migrations``). Processes
call ``ensure_migrated`` at start-up and refuse to run on a schema they do not know;
``switchboard db upgrade`` calls ``upgrade``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from infra.store.engine import create_engine, redact, transaction

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Any constant works: it only has to be the same in every process that upgrades.
_PG_UPGRADE_LOCK = 0x5B0A_2D01


class DatabaseNotMigrated(RuntimeError):  # noqa: N818  (name fixed by the shared interface)
    """The database schema is not at the revision this code needs."""


def _config() -> Config:
    config = Config()
    # Config values go through configparser interpolation: escape "%".
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision of the shipped migrations."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The database's revision, or None for a database never migrated.

    Raises:
        TransientError: The database cannot be reached.
    """
    with transaction(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision (idempotent).

    Concurrent upgrades of one PostgreSQL database are serialised by an advisory lock.
    """
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_UPGRADE_LOCK)))
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def ensure_migrated(engine: sa.Engine) -> None:
    """Check that the database is at the head revision.

    Raises:
        DatabaseNotMigrated: It is empty or at another revision; the message says what
            to run.
        TransientError: The database cannot be reached.
    """
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"database {redact(engine.url)} is not migrated (at {current or 'empty'}, "
            f"need {head}): run `switchboard db upgrade`"
        )
