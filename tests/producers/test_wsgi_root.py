from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from falcon import testing

from infra.store.migrate import DatabaseNotMigrated, upgrade
from producers.wsgi import application
from tests.producers.api_support import NOW, SECRET, current_payload, encode, sign


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
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, restored_logging: None
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
    environment: str,
) -> None:
    upgrade(environment)
    client = testing.TestClient(application())
    try:
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
    finally:
        del client
        gc.collect()
