"""Opening the SQL store for a command, with errors a user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from contracts.errors import TransientError
from infra.cli.output import USAGE_ERROR, fail
from infra.settings import Settings
from infra.store.engine import create_engine, redact
from infra.store.migrate import DatabaseNotMigrated, ensure_migrated

URL_HINT = "check SWITCHBOARD_DATABASE__URL (or DATABASE_URL)"


def usable_url(settings: Settings) -> str:
    """The database URL, checked to be one SQLAlchemy can open (exits 2 with why if not).

    A malformed URL or a database this install has no driver for is a mistake in the
    settings, said in one line, not a traceback from the first connection.
    """
    url = settings.database_url
    try:
        make_url(url).get_dialect().import_dbapi()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        fail(
            f"{redact(url)} is not a database URL Switchboard can open: {error}",
            hint=f"{URL_HINT}: postgresql://USER:PASSWORD@HOST:5432/DB, or sqlite:///PATH",
            code=USAGE_ERROR,
        )
    return url


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (None for another database, or one in memory)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def existing_url(settings: Settings) -> str:
    """``usable_url``, and for SQLite a file that exists (exits 1 saying where it looked).

    A mistyped path must not become a new, empty database by a command that only reads.
    """
    url = usable_url(settings)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        fail(
            f"no database at {path}",
            hint=f"{URL_HINT}; if it is the one you mean, `switchboard db upgrade` creates it",
        )
    return url


@contextmanager
def migrated_engine(settings: Settings) -> Iterator[sa.Engine]:
    """An engine on the configured database, checked to be migrated; disposed after.

    Exits with a message (and no traceback) when the URL is not one, the SQLite file
    does not exist (``existing_url``), or the database is unreachable or not migrated.
    """
    url = existing_url(settings)
    engine = create_engine(url, echo=settings.database.echo)
    try:
        try:
            ensure_migrated(engine)
        except DatabaseNotMigrated as error:
            fail(str(error))  # the message already says to run `switchboard db upgrade`
        except (TransientError, sa.exc.OperationalError) as error:
            fail(f"cannot reach the database {redact(url)}: {error}", hint=URL_HINT)
        yield engine
    finally:
        engine.dispose()
