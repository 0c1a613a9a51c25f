from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from falcon import testing

from infra.settings import load_settings
from infra.store.migrate import DatabaseNotMigrated, upgrade
from producers.wsgi import Api, application, build_api
from tests.producers.api_support import NOW, SECRET, current_payload, encode, sign
from tests.standins.openai_server import OpenAIStandIn


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
    """Build the API as the root does (``build_api``) and close its clients after the test."""
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
    for name in ("OPENAI_API_KEY", "PINECONE_API_KEY", "ELEVENLABS_WEBHOOK_SECRET", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return database_url


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
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json["checks"]["database"] == {"ok": True, "adapter": "sqlite", "error": None}
    assert ready.json["checks"]["broker"] == {"ok": True, "adapter": "redis", "error": None}
    assert ready.json["adapters"]["vectors"].startswith("local")

    body = encode(current_payload())
    headers = {"ElevenLabs-Signature": sign(body, at=NOW)}
    # The root's clock is the real one: a signature from the tests' fixed past is too old,
    # which proves the configured secret and tolerance are wired (401, not 503).
    assert (
        client.simulate_post(
            "/api/webhooks/elevenlabs/call-ended", body=body, headers=headers
        ).status_code
        == 401
    )


@pytest.mark.redis
def test_the_readiness_of_a_configured_vendor_is_probed_and_a_failure_named(
    environment: str,
    api_client: Callable[[], testing.TestClient],
    monkeypatch: pytest.MonkeyPatch,
    openai_standin: OpenAIStandIn,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_OPENAI__API_KEY", openai_standin.api_key)
    monkeypatch.setenv("SWITCHBOARD_OPENAI__BASE_URL", openai_standin.base_url)
    monkeypatch.setenv("SWITCHBOARD_OPENAI__MAX_RETRIES", "0")
    monkeypatch.setenv("SWITCHBOARD_OPENAI__TIMEOUT_S", "2")
    upgrade(environment)
    client = api_client()
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json["checks"]
    assert list(checks) == ["database", "broker", "analyzer", "embedder", "checkpoints"]
    assert checks["analyzer"] == {"ok": True, "adapter": "openai:gpt-4o-mini", "error": None}
    assert checks["embedder"]["ok"] is True

    openai_standin.fail_next(401, path_prefix="/v1/models/gpt-4o-mini")
    failing = client.simulate_get("/readyz")
    assert failing.status_code == 503, failing.text
    assert failing.json["status"] == "unavailable"
    analyzer = failing.json["checks"]["analyzer"]
    assert analyzer["ok"] is False
    assert analyzer["adapter"] == "openai:gpt-4o-mini"
    assert analyzer["error"].startswith("PermanentError:")
    assert "401" in analyzer["error"]
    assert failing.json["checks"]["embedder"]["ok"] is True
    assert failing.json["checks"]["database"]["ok"] is True

    assert client.simulate_get("/readyz").status_code == 200
