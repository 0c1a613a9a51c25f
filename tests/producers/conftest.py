"""Fixtures of the producer tests: the API over the real SQL store on a migrated SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from falcon import testing

from contracts import Contract
from contracts.errors import PermanentError
from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.bus.dispatch import InlineDispatcher
from infra.bus.publishing import Envelope, InMemoryPublisher, Publisher
from infra.dlq import DeadLetterDesk
from infra.erasure import DeskBin, Eraser
from infra.health import Dependency, HealthMonitor
from infra.intake import Intake
from infra.queue_report import QueueReporter
from infra.settings import DailyCallsSettings
from infra.sockets import free_port
from infra.store.admins import SqlAdminTokens
from infra.store.audit import SqlAudit
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.dialing import SqlCallBook
from infra.store.engine import create_engine, ping
from infra.store.erasure import SqlErasure
from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.progress import SqlJobProgress
from infra.store.records import MessageRef, Tenant
from infra.store.sessions import SqlConsoleSessions
from infra.store.tenants import SqlTenantDirectory
from infra.store.users import SqlUsers
from infra.store.vectors import SqlVectorIndex
from producers.app import ApiDeps, create_app
from tests.builders import make_inbox_entry
from tests.bus.support import kill, rejecting
from tests.fakes import FixedClock
from tests.producers.api_support import (
    ADMIN_TOKEN,
    GENERAL_AGENT,
    HEALTH_AGENT,
    NOW,
    SECRET,
    TOLERANCE_S,
)
from tests.producers.conformance import ConformingClient

TELEPHONY_SECRET = "telephony-test-secret"


@dataclass
class Store:
    """The SQL repositories of one test database."""

    engine: sa.Engine
    tenants: SqlTenantDirectory
    ledger: SqlJobLedger
    jobs: SqlJobQueries
    progress: SqlJobProgress
    queries: SqlCallQueries
    calls: SqlCallStore
    vectors: SqlVectorIndex
    users: SqlUsers
    outbound: SqlCallBook
    clock: FixedClock
    admins: SqlAdminTokens


@dataclass(frozen=True)
class TenantFixture:
    """A tenant and its API key."""

    tenant: Tenant
    key: str


def open_store(url: str) -> Store:
    """Migrate the database at ``url`` and open every repository on it."""
    upgrade(url)
    engine = create_engine(url)
    # The users' and call book's clock: the API's fixed unix time, as a datetime.
    clock = FixedClock(datetime.fromtimestamp(NOW, tz=UTC))
    return Store(
        engine=engine,
        tenants=SqlTenantDirectory(engine),
        ledger=SqlJobLedger(engine),
        jobs=SqlJobQueries(engine),
        progress=SqlJobProgress(engine),
        queries=SqlCallQueries(engine),
        calls=SqlCallStore(engine),
        vectors=SqlVectorIndex(engine),
        users=SqlUsers(engine, clock=clock),
        outbound=SqlCallBook(engine, clock=clock),
        clock=clock,
        admins=SqlAdminTokens(engine),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'switchboard.db'}")
    try:
        yield opened
    finally:
        opened.engine.dispose()


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


def database_monitor(store: Store) -> HealthMonitor:
    """A monitor of the test database only, never probed (``refresh()`` it to probe)."""
    return HealthMonitor([Dependency("database", "sqlite", lambda: ping(store.engine), True)])


@pytest.fixture
def make_client(store: Store, publisher: InMemoryPublisher) -> ClientFactory:
    """Build a test client that checks every answer against the API's OpenAPI document.

    ``publisher=`` replaces the bus behind the intake (e.g. a ``FailingPublisher``);
    every other keyword argument replaces an ``ApiDeps`` field.
    """

    def build(*, publisher: Publisher = publisher, **overrides: Any) -> testing.TestClient:
        absent_letters = DeadLetters(
            redis.Redis(port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5),
            "switchboard",
        )
        absent_desk = DeadLetterDesk(absent_letters, store.progress, SqlAudit(store.engine))
        fields: dict[str, Any] = {
            "max_body_bytes": 64 * 1024,
            "max_json_depth": 64,
            "webhook_secret": SECRET,
            "signature_tolerance_s": TOLERANCE_S,
            "admin_token": ADMIN_TOKEN,
            "admins": store.admins,
            "tenants": store.tenants,
            "ledger": store.ledger,
            "intake": Intake(store.ledger, InlineDispatcher(publisher, store.ledger)),
            "jobs": store.jobs,
            "calls": store.queries,
            "vectors": store.vectors,
            "health": database_monitor(store),
            "users": store.users,
            "outbound": store.outbound,
            "telephony_secret": TELEPHONY_SECRET,
            "telephony_tolerance_s": TOLERANCE_S,
            # No broker behind the queue report unless a test passes one: it reports
            # the broker unreachable (connection refused at once).
            "queue_report": QueueReporter(
                redis.Redis(port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5),
                "switchboard",
                store.jobs,
                DailyCallsSettings(),
                store.clock,
            ),
            "trigger_every_s": 10,
            # Likewise the dead-letter desk: a real one, on a broker that is not there.
            "desk": absent_desk,
            "eraser": Eraser(
                SqlErasure(store.engine),
                store.vectors,
                SqlAudit(store.engine),
                DeskBin(absent_letters, absent_desk),
            ),
            "sessions": SqlConsoleSessions(
                store.engine, clock=lambda: datetime.fromtimestamp(NOW, tz=UTC)
            ),
            "console_session_s": 3600.0,
            "clock": lambda: float(NOW),
        }
        return ConformingClient(create_app(ApiDeps(**(fields | overrides))))

    return build


@pytest.fixture
def client(make_client: ClientFactory, acme: TenantFixture) -> testing.TestClient:
    return make_client()


def _reject(payload: dict[str, Any]) -> None:
    raise PermanentError(f"vendor refused {payload.get('conversation_id')}")


@pytest.fixture
def dead_broker(redis_url: str) -> Iterator[SwitchboardBroker]:
    """A broker whose every pipeline actor rejects what it gets, at once."""
    with rejecting(redis_url, "sbadmin", _reject) as built:
        yield built


@pytest.fixture
def desk(store: Store, dead_broker: SwitchboardBroker) -> DeadLetterDesk:
    """The dead-letter desk on the rejecting broker and the test store."""
    letters = DeadLetters(dead_broker.client, dead_broker.namespace)
    return DeadLetterDesk(letters, store.progress, SqlAudit(store.engine))


def failed_job(store: Store, broker: SwitchboardBroker, contract: Contract) -> str:
    """A job accepted, started and failed in the store; its message's dead letter id."""
    store.ledger.accept(make_inbox_entry(contract, source="test"))
    [message_id] = kill(broker, Envelope.of(contract))
    message = MessageRef(contract.idempotency_key, contract.route.actor, 0)
    store.progress.message_started(contract.job_id, message)
    store.progress.message_failed(
        contract.job_id, message, error="PermanentError: refused", dead_letter_id=message_id
    )
    return message_id
