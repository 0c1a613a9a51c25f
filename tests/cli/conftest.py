from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.tenants import SqlTenantDirectory


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI's settings at an empty data dir (SQLite inside it)."""
    for name in ("SWITCHBOARD_DATABASE__URL", "DATABASE_URL", "SWITCHBOARD_BROKER__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def engine(data_dir: Path) -> Iterator[sa.Engine]:
    """The CLI's own store: a migrated SQLite file in its data dir."""
    data_dir.mkdir(parents=True)
    url = f"sqlite:///{data_dir / 'switchboard.db'}"
    upgrade(url)
    built = create_engine(url)
    try:
        yield built
    finally:
        built.dispose()


@pytest.fixture
def tenant_id(engine: sa.Engine) -> str:
    """The tenant ``acme`` in the CLI's store."""
    tenant, _ = SqlTenantDirectory(engine).add_tenant("acme")
    return tenant.id
