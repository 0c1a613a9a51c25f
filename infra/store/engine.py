"""SQLAlchemy engines for the SQL store (SQLite by default, PostgreSQL in production).

SQLite connections get WAL, a busy timeout and foreign keys on every connection, because
several processes (API, worker, scheduler) share one file. PostgreSQL URLs are normalised
to the psycopg 3 driver. Repositories open one short transaction per call with
``transaction``, which translates driver errors::

    sqlalchemy OperationalError / pool TimeoutError  ->  TransientError (retry)
    sqlalchemy IntegrityError / DataError            ->  PermanentError (no retry helps)
    a value the driver cannot bind (an integer past   ->  PermanentError
    SQLite's 64 bits, a lone surrogate)

Contracts validate what intake accepts (``contracts.fields``), so the last two are a
second line: a value that can never be stored goes to the dead letters at once, not
through every retry.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from contracts.errors import PermanentError, TransientError

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5
_PG_ALIASES = {"postgres", "postgresql"}
PRESERVE_ROWCOUNT = {"preserve_rowcount": True}

_SQLITE_LOCKS: weakref.WeakKeyDictionary[sa.Engine, threading.RLock] = weakref.WeakKeyDictionary()
"""One transaction at a time per SQLite engine: SQLite has one writer anyway, and a
thread waiting on this lock wakes when it is free, where one waiting in SQLite's busy
handler sleeps in steps of up to 100 ms (the tail of a burst of webhooks)."""
"""Execution options that keep an INSERT's rowcount (SQLAlchemy 2.x drops it otherwise)."""


def create_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """Create an engine for ``url`` with the store's connection settings.

    Args:
        url: A SQLAlchemy URL; ``postgres://`` and ``postgresql://`` use psycopg 3.
        echo: Log every statement (debugging only).

    Returns:
        The engine. Nothing connects until first use.
    """
    parsed = make_url(url)
    if parsed.drivername in _PG_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return sa.create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: sa.URL, *, echo: bool) -> sa.Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    _SQLITE_LOCKS[engine] = threading.RLock()
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Per connection, not per file: SQLite forgets busy_timeout and foreign_keys.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def redact(url: str | sa.URL) -> str:
    """Render ``url`` with its password hidden, for messages and logs."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        return "<unparseable database url>"
    return parsed.render_as_string(hide_password=True)


def ping(engine: sa.Engine) -> None:
    """Run ``SELECT 1``.

    Raises:
        TransientError: The database cannot be reached.
    """
    with transaction(engine) as conn:
        conn.execute(sa.text("SELECT 1"))


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One short transaction, committed on success, with driver errors translated.

    Raises:
        TransientError: The database is unreachable, locked or the pool is exhausted.
        PermanentError: A constraint or a value was rejected (retrying cannot help).
    """
    where = redact(engine.url)
    try:
        with _SQLITE_LOCKS.get(engine) or nullcontext(), engine.begin() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
        raise TransientError(f"database {where} unavailable: {_first_line(exc)}") from exc
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        raise PermanentError(f"database {where} rejected a write: {_first_line(exc)}") from exc
    except sa.exc.StatementError as exc:
        if not isinstance(exc.orig, OverflowError | UnicodeError | ValueError):
            raise
        raise PermanentError(f"database {where} cannot store a value: {_first_line(exc)}") from exc
    except (OverflowError, UnicodeError) as exc:
        # Raised by the drivers while binding, unwrapped: an integer past SQLite's 64
        # bits, a lone surrogate (no UTF-8 encoding exists for it).
        raise PermanentError(f"database {where} cannot store a value: {exc}") from exc


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def dialect_insert(conn: sa.Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT supporting ``ON CONFLICT`` for the connection's dialect.

    Raises:
        PermanentError: The dialect is neither SQLite nor PostgreSQL.
    """
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise PermanentError(f"unsupported database dialect {name!r} (use SQLite or PostgreSQL)")
