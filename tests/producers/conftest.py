"""Fixtures of the producer tests: the API over the real SQL store on a migrated SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from falcon import testing

from infra.bus.publishing import InMemoryPublisher
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.records import Tenant
from infra.store.tenants import SqlTenantDirectory
from infra.store.vectors import SqlVectorIndex
from producers.app import ApiDeps, create_app
from producers.ports import ReadinessCheck
from tests.producers.api_support import (
    ADMIN_TOKEN,
    GENERAL_AGENT,
    HEALTH_AGENT,
    NOW,
    SECRET,
    TOLERANCE_S,
)


@dataclass
class Store:
    """The SQL repositories of one test database."""

    engine: sa.Engine
    tenants: SqlTenantDirectory
    ledger: SqlJobLedger
    queries: SqlCallQueries
    calls: SqlCallStore
    vectors: SqlVectorIndex


@dataclass(frozen=True)
class TenantFixture:
    """A tenant and its API key."""

    tenant: Tenant
    key: str


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        yield Store(
            engine=engine,
            tenants=SqlTenantDirectory(engine),
            ledger=SqlJobLedger(engine),
            queries=SqlCallQueries(engine),
            calls=SqlCallStore(engine),
            vectors=SqlVectorIndex(engine),
        )
    finally:
        engine.dispose()


@pytest.fixture
def acme(store: Store) -> TenantFixture:
    tenant, key = store.tenants.add_tenant("acme", timezone="Europe/Berlin")
    store.tenants.bind_agent(tenant.id, GENERAL_AGENT, kind="general")
    store.tenants.bind_agent(tenant.id, HEALTH_AGENT, kind="health_check")
    return TenantFixture(tenant, key)


@pytest.fixture
def globex(store: Store) -> TenantFixture:
    tenant, key = store.tenants.add_tenant("globex")
    store.tenants.bind_agent(tenant.id, "agent_globex", kind="general")
    return TenantFixture(tenant, key)


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


ClientFactory = Callable[..., testing.TestClient]


@pytest.fixture
def make_client(store: Store, publisher: InMemoryPublisher) -> ClientFactory:
    """Build a test client; keyword arguments replace ``ApiDeps`` fields."""

    def build(**overrides: Any) -> testing.TestClient:
        checks: Sequence[ReadinessCheck] = ()
        fields: dict[str, Any] = {
            "max_body_bytes": 64 * 1024,
            "webhook_secret": SECRET,
            "signature_tolerance_s": TOLERANCE_S,
            "admin_token": ADMIN_TOKEN,
            "tenants": store.tenants,
            "ledger": store.ledger,
            "calls": store.queries,
            "publisher": publisher,
            "vectors": store.vectors,
            "checks": checks,
            "adapters": {"analyzer": "local", "vectors": "local"},
            "clock": lambda: float(NOW),
        }
        return testing.TestClient(create_app(ApiDeps(**(fields | overrides))))

    return build


@pytest.fixture
def client(make_client: ClientFactory, acme: TenantFixture) -> testing.TestClient:
    return make_client()
