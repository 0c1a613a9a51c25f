"""Alembic environment of the SQL store.

``infra.store.migrate.upgrade`` passes an open connection in
``config.attributes["connection"]``; the ``alembic`` command line (with a
``sqlalchemy.url`` option) is supported too. SQLite runs in batch mode, because it
cannot alter most columns in place.

Unlike Alembic's template, this file never calls ``logging.config.fileConfig``: that
would replace the process's handlers with an ini file's plain-text ones. Alembic's
lines go through the logging the process configured (``infra.logs``), JSON included.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

import infra.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from infra.store.engine import create_engine

TARGET_METADATA = SQLModel.metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=TARGET_METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=TARGET_METADATA,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
