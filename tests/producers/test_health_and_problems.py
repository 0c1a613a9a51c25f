from __future__ import annotations

from collections.abc import Callable

import falcon
import pytest
from falcon import testing
from structlog.testing import capture_logs

from contracts.errors import TransientError
from infra.bus.publishing import InMemoryPublisher
from infra.health import Dependency, HealthMonitor
from tests.producers.api_support import (
    PROBLEM_JSON,
    WEBHOOK,
    current_payload,
    encode,
    signed_headers,
)
from tests.producers.conformance import ConformingClient
from tests.producers.conftest import ClientFactory


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _ok() -> None:
    return None


def _broker_down() -> None:
    raise TransientError("redis at 127.0.0.1:6390 refused the connection")


def _database_down() -> None:
    raise TransientError("database is locked")


class _UnreachableTenants:
    """A tenant directory whose database is down."""

    def agent(self, agent_id: str) -> None:
        raise TransientError(f"database unreachable while resolving {agent_id}")


class _Exploding:
    def on_get(self, _req: falcon.Request, _resp: falcon.Response) -> None:
        raise RuntimeError("password=hunter2 leaked from a driver")


def api_monitor(
    database: Callable[[], None] = _ok,
    broker: Callable[[], None] = _ok,
    clock: Callable[[], float] | None = None,
) -> HealthMonitor:
    """The API's dependencies as ``build_api`` wires them: the database required, not the broker."""
    return HealthMonitor(
        [
            Dependency("database", "sqlite", database, required=True),
            Dependency("broker", "redis", broker, required=False),
        ],
        adapters={"vectors": "local-sql"},
        clock=clock or FakeMonotonic(),
    )


def test_healthz_answers_ok_without_probing_anything(make_client: ClientFactory) -> None:
    probed: list[str] = []
    monitor = HealthMonitor([Dependency("database", "sqlite", lambda: probed.append("db"), True)])

    result = make_client(health=monitor).simulate_get("/healthz")

    assert result.status_code == 200
    assert result.json == {"status": "ok"}
    assert probed == []


@pytest.mark.parametrize(
    ("path", "database", "status"),
    [
        ("/healthz", _database_down, 200),
        ("/readyz", _ok, 200),
        ("/readyz", _database_down, 503),
    ],
)
def test_head_answers_the_status_get_would_without_a_body(
    make_client: ClientFactory, path: str, database: Callable[[], None], status: int
) -> None:
    monitor = api_monitor(database=database)
    monitor.refresh()
    client = make_client(health=monitor)
    assert isinstance(client, ConformingClient)

    got = client.simulate_get(path)
    head = client.simulate_head(path)

    assert (got.status_code, head.status_code) == (status, status)
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == got.headers["content-type"]
    # Checked against the document's HEAD operation, which gives its answers no body.
    assert (path, "HEAD", str(status)) in {(c.template, c.method, c.status) for c in client.checked}


def test_readyz_is_ready_when_every_dependency_answers(make_client: ClientFactory) -> None:
    monitor = api_monitor()
    monitor.refresh()

    result = make_client(health=monitor).simulate_get("/readyz")

    assert result.status_code == 200
    assert result.json == {
        "status": "ready",
        "checks": {
            "database": {
                "ok": True,
                "required": True,
                "adapter": "sqlite",
                "error": None,
                "checked_s_ago": 0.0,
            },
            "broker": {
                "ok": True,
                "required": False,
                "adapter": "redis",
                "error": None,
                "checked_s_ago": 0.0,
            },
        },
        "adapters": {"vectors": "local-sql"},
    }


def test_readyz_is_degraded_but_200_while_the_broker_is_down(make_client: ClientFactory) -> None:
    monitor = api_monitor(broker=_broker_down)
    monitor.refresh()

    result = make_client(health=monitor).simulate_get("/readyz")

    assert result.status_code == 200
    assert result.json["status"] == "degraded"
    assert result.json["checks"]["database"]["ok"] is True
    broker = result.json["checks"]["broker"]
    assert (broker["ok"], broker["required"], broker["adapter"]) == (False, False, "redis")
    assert broker["error"] == "TransientError: redis at 127.0.0.1:6390 refused the connection"


def test_readyz_is_503_unavailable_while_the_database_is_down(make_client: ClientFactory) -> None:
    monitor = api_monitor(database=_database_down)
    monitor.refresh()

    result = make_client(health=monitor).simulate_get("/readyz")

    assert result.status_code == 503
    assert result.json["status"] == "unavailable"
    database = result.json["checks"]["database"]
    assert (database["ok"], database["required"]) == (False, True)
    assert database["error"] == "TransientError: database is locked"
    assert result.json["checks"]["broker"]["ok"] is True


def test_readyz_is_503_before_the_first_probe(make_client: ClientFactory) -> None:
    result = make_client(health=api_monitor()).simulate_get("/readyz")

    assert result.status_code == 503
    assert result.json["checks"]["database"]["error"] == "not probed yet"
    assert result.json["checks"]["database"]["checked_s_ago"] is None


def test_readyz_answers_from_the_latest_probe_and_says_how_old_it_is(
    make_client: ClientFactory,
) -> None:
    clock = FakeMonotonic()
    monitor = api_monitor(clock=clock)
    monitor.refresh()
    clock.now += 4.0

    result = make_client(health=monitor).simulate_get("/readyz")

    assert result.status_code == 200
    assert result.json["checks"]["database"]["checked_s_ago"] == 4.0
    assert result.json["checks"]["broker"]["checked_s_ago"] == 4.0


class FreezingBroker:
    """A broker probe that, once frozen, hangs: meanwhile time passes and ``/readyz`` is asked."""

    def __init__(self, clock: FakeMonotonic) -> None:
        self.clock = clock
        self.client: testing.TestClient | None = None
        self.answers_while_hanging: list[testing.Result] = []

    def __call__(self) -> None:
        if self.client is not None:
            self.clock.now += 5.0
            self.answers_while_hanging.append(self.client.simulate_get("/readyz"))


def test_readyz_reports_a_hanging_probe_as_down_without_waiting_for_it(
    make_client: ClientFactory,
) -> None:
    clock = FakeMonotonic()
    broker = FreezingBroker(clock)
    monitor = api_monitor(broker=broker, clock=clock)
    monitor.refresh()
    broker.client = make_client(health=monitor)

    monitor.refresh()

    [during] = broker.answers_while_hanging
    assert during.status_code == 200
    assert during.json["status"] == "degraded"
    assert during.json["checks"]["broker"]["ok"] is False
    assert during.json["checks"]["broker"]["error"] == "no answer for 5.0 s"


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
