from __future__ import annotations

import falcon
import pytest
from structlog.testing import capture_logs

from contracts.errors import TransientError
from infra.bus.publishing import InMemoryPublisher
from producers.ports import ReadinessCheck
from tests.producers.api_support import (
    PROBLEM_JSON,
    WEBHOOK,
    current_payload,
    encode,
    signed_headers,
)
from tests.producers.conftest import ClientFactory


def _ok() -> None:
    return None


def _down() -> None:
    raise TransientError("redis at 127.0.0.1:6390 refused the connection")


class _UnreachableTenants:
    """A tenant directory whose database is down."""

    def agent(self, agent_id: str) -> None:
        raise TransientError(f"database unreachable while resolving {agent_id}")


class _Exploding:
    def on_get(self, _req: falcon.Request, _resp: falcon.Response) -> None:
        raise RuntimeError("password=hunter2 leaked from a driver")


def test_healthz_answers_ok_without_probing_anything(make_client: ClientFactory) -> None:
    probed: list[str] = []
    check = ReadinessCheck("database", "sqlite", lambda: probed.append("database"))

    result = make_client(checks=[check]).simulate_get("/healthz")

    assert result.status_code == 200
    assert result.json == {"status": "ok"}
    assert probed == []


def test_readyz_is_ready_when_every_check_passes(make_client: ClientFactory) -> None:
    checks = [ReadinessCheck("database", "sqlite", _ok), ReadinessCheck("broker", "redis", _ok)]

    result = make_client(checks=checks).simulate_get("/readyz")

    assert result.status_code == 200
    assert result.json == {
        "status": "ready",
        "checks": {
            "database": {"ok": True, "adapter": "sqlite", "error": None},
            "broker": {"ok": True, "adapter": "redis", "error": None},
        },
        "adapters": {"analyzer": "local", "vectors": "local"},
    }


def test_readyz_is_503_naming_the_failing_dependency(make_client: ClientFactory) -> None:
    checks = [ReadinessCheck("database", "sqlite", _ok), ReadinessCheck("broker", "redis", _down)]

    result = make_client(checks=checks).simulate_get("/readyz")

    assert result.status_code == 503
    assert result.json["status"] == "unavailable"
    assert result.json["checks"]["database"]["ok"] is True
    broker = result.json["checks"]["broker"]
    assert broker["ok"] is False
    assert broker["adapter"] == "redis"
    assert broker["error"] == "TransientError: redis at 127.0.0.1:6390 refused the connection"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/route", 404),
        ("DELETE", "/healthz", 405),
        ("GET", "/api/webhooks/elevenlabs/call-ended", 405),
    ],
)
def test_routing_errors_are_problem_json(
    make_client: ClientFactory, method: str, path: str, status: int
) -> None:
    result = make_client().simulate_request(method, path, headers={"Accept": "text/html"})

    assert result.status_code == status
    assert result.headers["content-type"] == PROBLEM_JSON
    assert result.json["status"] == status
    assert result.json["type"] == "about:blank"
    assert result.json["instance"] == path


def test_an_unexpected_error_is_a_bare_500_problem_logged_with_its_traceback(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    client.app.add_route("/explode", _Exploding())

    with capture_logs() as logs:
        result = client.simulate_get("/explode")

    assert result.status_code == 500
    assert result.headers["content-type"] == PROBLEM_JSON
    assert result.json["status"] == 500
    assert "hunter2" not in result.text
    assert "RuntimeError" not in result.text
    [entry] = [e for e in logs if e["log_level"] == "error"]
    assert entry["event"] == "unhandled error"
    assert entry["path"] == "/explode"
    assert isinstance(entry["exc_info"], RuntimeError)


def test_an_unreachable_dependency_is_a_503_problem_with_retry_after(
    make_client: ClientFactory, publisher: InMemoryPublisher
) -> None:
    client = make_client(tenants=_UnreachableTenants())
    body = encode(current_payload())

    result = client.simulate_post(WEBHOOK, body=body, headers=signed_headers(body))

    assert result.status_code == 503
    assert result.headers["content-type"] == PROBLEM_JSON
    assert result.headers["retry-after"] == "5"
    assert "unreachable" not in result.text
    assert publisher.published == []
