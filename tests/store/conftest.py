"""Fixtures of the SQL store's contract suite: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.records import Tenant
from infra.store.tenants import SqlTenantDirectory


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file in a new directory, or a fresh PG DB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'switchboard.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """The URL of a database migrated to the head revision."""
    upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on the migrated database, disposed after the test."""
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def tenants(engine: sa.Engine) -> SqlTenantDirectory:
    """The tenant directory on the migrated database."""
    return SqlTenantDirectory(engine)


@pytest.fixture
def tenant(tenants: SqlTenantDirectory) -> Tenant:
    """A tenant named ``acme`` in Europe/Paris."""
    created, _ = tenants.add_tenant("acme", timezone="Europe/Paris")
    return created
