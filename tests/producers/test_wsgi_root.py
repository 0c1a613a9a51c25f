from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from falcon import testing

from infra.local_adapters import LocalAdapterRefused
from infra.settings import load_settings
from infra.store.engine import create_engine
from infra.store.migrate import DatabaseNotMigrated, upgrade
from infra.store.tables import JOBS
from infra.store.tenants import SqlTenantDirectory
from producers.wsgi import Api, application, build_api
from tests.producers.api_support import (
    GENERAL_AGENT,
    NOW,
    SECRET,
    WEBHOOK,
    current_payload,
    encode,
    sign,
)
from tests.standins.openai_server import OpenAIStandIn

READY_TIMEOUT_S = 10.0


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """``application()`` configures logging for the process: undo it after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


@pytest.fixture
def api_client(environment: str) -> Iterator[Callable[[], testing.TestClient]]:
    """Build the API as the root does (``build_api``) and close it after the test."""
    built: list[Api] = []

    def client() -> testing.TestClient:
        api = build_api(load_settings())
        built.append(api)
        return testing.TestClient(api.app)

    yield client
    for api in built:
        api.close()


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    redis_url: str,
    restored_logging: None,
) -> str:
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE__URL", database_url)
    monkeypatch.setenv("SWITCHBOARD_BROKER__URL", redis_url)
    monkeypatch.setenv("SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SWITCHBOARD_VECTORS__BACKEND", "local")
    monkeypatch.setenv("SWITCHBOARD_HEALTH__INTERVAL_S", "0.1")
    for name in ("OPENAI_API_KEY", "PINECONE_API_KEY", "ELEVENLABS_WEBHOOK_SECRET", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return database_url


def probed_readiness(client: testing.TestClient) -> testing.Result:
    """``/readyz`` once the background monitor has probed every dependency."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        result = client.simulate_get("/readyz")
        if all(c["checked_s_ago"] is not None for c in result.json["checks"].values()):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"the monitor probed nothing in {READY_TIMEOUT_S} s: {result.text}")
        time.sleep(0.05)


def job_row(database_url: str, conversation_id: str) -> sa.Row[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(JOBS).where(JOBS.c.correlation_id == conversation_id)
            ).one()
    finally:
        engine.dispose()


def add_tenant(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        tenants = SqlTenantDirectory(engine)
        tenant, _ = tenants.add_tenant("acme")
        tenants.bind_agent(tenant.id, GENERAL_AGENT, kind="general")
    finally:
        engine.dispose()


def post_now(client: testing.TestClient, conversation_id: str) -> testing.Result:
    """A webhook signed now: the root's clock is the real one."""
    body = encode(current_payload(conversation_id))
    headers = {"ElevenLabs-Signature": sign(body, at=int(time.time()))}
    return client.simulate_post(WEBHOOK, body=body, headers=headers)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.redis
def test_the_root_refuses_to_start_on_an_unmigrated_database(environment: str) -> None:
    with pytest.raises(DatabaseNotMigrated, match="switchboard db upgrade"):
        application()


@pytest.mark.redis
def test_the_root_wires_a_ready_api_on_the_configured_database_and_broker(
    environment: str, api_client: Callable[[], testing.TestClient]
) -> None:
    upgrade(environment)
    client = api_client()

    ready = probed_readiness(client)

    assert ready.status_code == 200, ready.text
    assert ready.json["status"] == "ready"
    database, broker = ready.json["checks"]["database"], ready.json["checks"]["broker"]
    assert (database["ok"], database["required"], database["adapter"]) == (True, True, "sqlite")
    assert (broker["ok"], broker["required"], broker["adapter"]) == (True, False, "redis")
    assert ready.json["adapters"]["vectors"].startswith("local")
    body = encode(current_payload())
    headers = {"ElevenLabs-Signature": sign(body, at=NOW)}
    # The root's clock is the real one: a signature from the tests' fixed past is too old,
    # which proves the configured secret and tolerance are wired (401, not 503).
    assert client.simulate_post(WEBHOOK, body=body, headers=headers).status_code == 401


@pytest.mark.redis
def test_the_root_publishes_accepted_webhooks_from_its_dispatcher_thread(
    environment: str, api_client: Callable[[], testing.TestClient]
) -> None:
    upgrade(environment)
    add_tenant(environment)
    client = api_client()

    result = post_now(client, "conv_root")

    assert result.status_code == 202, result.text
    deadline = time.monotonic() + READY_TIMEOUT_S
    while job_row(environment, "conv_root").published_at is None:
        assert time.monotonic() < deadline, "the dispatcher did not publish the job"
        time.sleep(0.05)
    assert job_row(environment, "conv_root").id == result.json["job_id"]


@pytest.mark.redis
def test_with_the_broker_down_the_root_is_degraded_and_still_accepts_webhooks(
    environment: str,
    api_client: Callable[[], testing.TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_BROKER__URL", f"redis://127.0.0.1:{closed_port()}/0")
    upgrade(environment)
    add_tenant(environment)
    client = api_client()

    ready = probed_readiness(client)
    accepted = post_now(client, "conv_outage")

    assert ready.status_code == 200, ready.text
    assert ready.json["status"] == "degraded"
    assert ready.json["checks"]["broker"]["ok"] is False
    assert ready.json["checks"]["broker"]["error"].startswith("TransientError:")
    assert accepted.status_code == 202, accepted.text
    row = job_row(environment, "conv_outage")
    assert (row.id, row.status) == (accepted.json["job_id"], "queued")


@pytest.mark.redis
def test_the_root_builds_no_vendor_adapter_but_the_vector_index(
    environment: str,
    api_client: Callable[[], testing.TestClient],
    monkeypatch: pytest.MonkeyPatch,
    openai_standin: OpenAIStandIn,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_OPENAI__API_KEY", openai_standin.api_key)
    monkeypatch.setenv("SWITCHBOARD_OPENAI__BASE_URL", openai_standin.base_url)
    upgrade(environment)
    client = api_client()

    ready = probed_readiness(client)

    assert ready.status_code == 200, ready.text
    assert list(ready.json["checks"]) == ["database", "broker"]
    assert list(ready.json["adapters"]) == ["vectors"]
    assert openai_standin.requests == []


@pytest.mark.redis
def test_production_refuses_the_local_vector_index_unless_allowed(
    environment: str,
    api_client: Callable[[], testing.TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENVIRONMENT", "production")
    upgrade(environment)

    with pytest.raises(LocalAdapterRefused, match="SWITCHBOARD_ALLOW_LOCAL=vectors"):
        api_client()
    monkeypatch.setenv("SWITCHBOARD_ALLOW_LOCAL", "vectors")
    ready = probed_readiness(api_client())

    assert ready.status_code == 200, ready.text
    assert ready.json["adapters"]["vectors"].startswith("local")


@pytest.mark.redis
@pytest.mark.parametrize("embedded", ["broker", "database"])
def test_production_refuses_the_embedded_broker_and_database_before_starting_them(
    environment: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    embedded: str,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENVIRONMENT", "production")
    monkeypatch.setenv("SWITCHBOARD_ALLOW_LOCAL", "vectors")
    monkeypatch.delenv(f"SWITCHBOARD_{embedded.upper()}__URL")

    with pytest.raises(LocalAdapterRefused, match=f"SWITCHBOARD_ALLOW_LOCAL={embedded}"):
        build_api(load_settings())
    data_dir = tmp_path / "data"
    assert not data_dir.exists() or list(data_dir.iterdir()) == []
