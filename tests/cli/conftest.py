from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from infra.bus.broker import SwitchboardBroker
from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.tenants import SqlTenantDirectory
from tests.bus.support import rejecting


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


@contextmanager
def cli_broker(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
    reject: Callable[[dict[str, Any]], None],
) -> Iterator[SwitchboardBroker]:
    """A broker whose every pipeline actor runs ``reject`` at once, named to the CLI's settings."""
    with rejecting(redis_url, prefix, reject) as built:
        monkeypatch.setenv("SWITCHBOARD_BROKER__URL", redis_url)
        monkeypatch.setenv("SWITCHBOARD_BROKER__NAMESPACE", built.namespace)
        yield built
