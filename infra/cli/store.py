"""Opening the SQL store for a command, with errors a user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from contracts.errors import TransientError
from infra.cli.output import fail
from infra.settings import Settings
from infra.store.engine import create_engine, redact
from infra.store.migrate import DatabaseNotMigrated, ensure_migrated


@contextmanager
def migrated_engine(settings: Settings) -> Iterator[sa.Engine]:
    """An engine on the configured database, checked to be migrated; disposed after.

    Exits with a message (and no traceback) when the database is unreachable or not
    migrated.
    """
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    try:
        try:
            ensure_migrated(engine)
        except DatabaseNotMigrated as error:
            fail(str(error))  # the message already says to run `switchboard db upgrade`
        except (TransientError, sa.exc.OperationalError) as error:
            fail(
                f"cannot reach the database {redact(settings.database_url)}: {error}",
                hint="check SWITCHBOARD_DATABASE__URL (or DATABASE_URL)",
            )
        yield engine
    finally:
        engine.dispose()
