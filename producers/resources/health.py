"""Liveness and readiness: ``GET /healthz`` (no I/O) and ``GET /readyz`` (no waiting).

``/readyz`` answers from the process's ``HealthMonitor``, which probes the dependencies
in the background (``infra.health``): a frozen broker never holds a probe request. The
API needs its database to do its job (record requests), so the database is required;
the broker is not — intake accepts while it is down and the relay publishes later — so
a broker outage makes the API ``degraded``, still 200. Every dependency's state and
adapter is in the body.
"""

from __future__ import annotations

import falcon

from infra.health import HealthMonitor


class Liveness:
    """``GET /healthz``: the process answers; nothing else is checked."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Answer ``{"status": "ok"}``."""
        resp.media = {"status": "ok"}


class Readiness:
    """``GET /readyz``: 200 ready or degraded, 503 unavailable, from the latest probes."""

    def __init__(self, monitor: HealthMonitor) -> None:
        self._monitor = monitor

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Answer the latest outcome of every probe."""
        report = self._monitor.report()
        resp.status = falcon.code_to_http_status(report.status_code)
        resp.media = report.body
