"""Readiness without waiting: dependencies probed in the background, answers from memory.

A readiness probe that pings Redis on the request thread waits as long as a frozen
Redis makes it (FIELD-NOTES: the full socket timeout), so ``/readyz`` itself stops
answering in the outage it should report. ``HealthMonitor`` probes each dependency on a
thread of its own every ``interval_s`` and keeps the latest outcome; ``report()`` reads
them and never blocks. A probe that has not answered for ``timeout_s`` counts as
failing, whatever its client's own timeout.

Readiness is "can this process do its job now": a dependency is ``required`` (the API's
database, the worker's and the scheduler's broker) or informational (the API's broker,
vendors). All required ones up: ``ready`` (or ``degraded`` when an informational one is
down), HTTP 200; a required one down: ``unavailable``, HTTP 503.

``ProbeServer`` serves ``/healthz`` (no I/O), ``/readyz`` and ``/metrics`` for the
processes that are not HTTP servers themselves (the worker and the scheduler), and the
API's ``/metrics`` from gunicorn's master (without ``/readyz``: the API answers it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.logs import get_logger

_log = get_logger(__name__)

SHUTDOWN_POLL_S = 0.1
"""How often a serving probe server checks whether it should stop."""

JOIN_S = 1.0
"""How long ``HealthMonitor.stop`` waits for each probe thread (a stuck one is left)."""


@dataclass(frozen=True)
class Dependency:
    """Something a process needs, or reports on.

    Attributes:
        name: Its name in the report (``database``, ``broker``, ``vectors``…).
        adapter: Which adapter serves it (``sqlite``, ``redis``, ``pinecone:calls``…).
        probe: Returns when it answers; raises when it does not.
        required: Whether the process is unavailable without it.
        interval_s: Time between its probes, when not the monitor's (vendors, whose
            probes cost a request, are probed less often).
    """

    name: str
    adapter: str
    probe: Callable[[], None]
    required: bool
    interval_s: float | None = None


@dataclass
class _State:
    ok: bool | None = None
    error: str | None = "not probed yet"
    checked_at: float | None = None
    probing_since: float | None = None


@dataclass(frozen=True)
class Report:
    """A readiness answer: HTTP status code and JSON body."""

    status_code: int
    body: dict[str, Any]


class HealthMonitor:
    """Probes dependencies in the background; ``report()`` reads the latest outcomes.

    Args:
        dependencies: What to probe.
        adapters: Adapter labels shown as they are.
        interval_s: Time between two probes of one dependency.
        timeout_s: A probe without an answer this long counts as failing.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        dependencies: Sequence[Dependency],
        *,
        adapters: Mapping[str, str] | None = None,
        interval_s: float = 2.0,
        timeout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dependencies = tuple(dependencies)
        self.adapters = dict(adapters or {})
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._states = {d.name: _State() for d in self.dependencies}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def probe(self, dependency: Dependency) -> None:
        """Probe one dependency now and record the outcome (never raises)."""
        with self._lock:
            self._states[dependency.name].probing_since = self._clock()
        outcome: tuple[bool, str | None]
        try:
            dependency.probe()
        # A probe's failure, whatever its type, is the answer: recorded and reported.
        except Exception as error:  # noqa: BLE001
            outcome = (False, f"{type(error).__name__}: {error}")
        else:
            outcome = (True, None)
        with self._lock:
            state = self._states[dependency.name]
            if outcome[0] is False and state.ok is not False:
                _log.warning("dependency down", dependency=dependency.name, error=outcome[1])
            elif outcome[0] and state.ok is False:
                _log.info("dependency back", dependency=dependency.name)
            state.ok, state.error = outcome
            state.checked_at, state.probing_since = self._clock(), None

    def refresh(self) -> None:
        """Probe every dependency now, one after the other."""
        for dependency in self.dependencies:
            self.probe(dependency)

    def start(self) -> None:
        """Probe each dependency on its own daemon thread until ``stop()``."""
        self._stop.clear()
        for dependency in self.dependencies:
            thread = threading.Thread(
                target=self._loop, args=(dependency,), name=f"probe-{dependency.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop probing; a thread stuck in a probe is a daemon and is left behind."""
        self._stop.set()
        for thread in self._threads:
            thread.join(JOIN_S)
        self._threads.clear()

    def _loop(self, dependency: Dependency) -> None:
        while not self._stop.is_set():
            self.probe(dependency)
            self._stop.wait(dependency.interval_s or self.interval_s)

    def report(self) -> Report:
        """The readiness answer from the latest outcomes, without probing."""
        now = self._clock()
        checks: dict[str, Any] = {}
        with self._lock:
            for dependency in self.dependencies:
                checks[dependency.name] = self._check(
                    dependency, self._states[dependency.name], now
                )
        down = [d for d in self.dependencies if not checks[d.name]["ok"]]
        if any(d.required for d in down):
            status, code = "unavailable", 503
        else:
            status, code = ("degraded" if down else "ready"), 200
        return Report(code, {"status": status, "checks": checks, "adapters": self.adapters})

    def _check(self, dependency: Dependency, state: _State, now: float) -> dict[str, Any]:
        ok, error = state.ok, state.error
        if state.probing_since is not None and now - state.probing_since > self.timeout_s:
            ok, error = False, f"no answer for {now - state.probing_since:.1f} s"
        return {
            "ok": bool(ok),
            "required": dependency.required,
            "adapter": dependency.adapter,
            "error": None if ok else error,
            "checked_s_ago": None if state.checked_at is None else round(now - state.checked_at, 1),
        }


class ProbeServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on a port of a process's own.

    Args:
        host: Bind address.
        port: Bind port (0 picks a free one; see ``port`` after ``start``).
        monitor: Answers ``/readyz``; None: 404.
        metrics: Renders the Prometheus exposition (content type, body); None: 404.
    """

    def __init__(
        self,
        host: str,
        port: int,
        monitor: HealthMonitor | None,
        metrics: Callable[[], tuple[str, bytes]] | None = None,
    ) -> None:
        handler = _handler(monitor, metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._serving = True
        self._thread = threading.Thread(target=self.serve_forever, name="probe-server", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve on the calling thread until ``stop()``."""
        self._serving = True
        self._server.serve_forever(poll_interval=SHUTDOWN_POLL_S)

    def stop(self) -> None:
        """Stop serving (if it started) and close the socket."""
        if self._serving:
            self._server.shutdown()
            self._serving = False
        self._server.server_close()


def _handler(
    monitor: HealthMonitor | None, metrics: Callable[[], tuple[str, bytes]] | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        head_only = False

        def do_HEAD(self) -> None:
            """Answer as GET without the body (uptime checkers ask with HEAD)."""
            self.head_only = True
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._json(200, {"status": "ok"})
            elif path == "/readyz" and monitor is not None:
                report = monitor.report()
                self._json(report.status_code, report.body)
            elif path == "/metrics" and metrics is not None:
                content_type, body = metrics()
                self._send(200, content_type, body)
            else:
                self._json(404, {"title": "Not Found", "status": 404, "instance": path})

        def _json(self, code: int, body: Mapping[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(body).encode())

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not self.head_only:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes arrive every few seconds: no access log."""

    return Handler
