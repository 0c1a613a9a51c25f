"""Liveness and readiness: ``GET /healthz`` (no I/O) and ``GET /readyz`` (no waiting).

Both answer ``HEAD`` too, as they answer ``GET`` but without a body (uptime checkers
send ``HEAD``): the responder runs the ``GET`` one and falcon drops the body, keeping its
``Content-Length``.

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
from producers.operations import PUBLIC, no_body, operation, returns
from producers.schemas.health import Alive, ReadinessReport


class Liveness:
    """``GET /healthz``: the process answers; nothing else is checked."""

    @operation(
        "getLiveness",
        summary="Liveness",
        tag="health",
        access=PUBLIC,
        answers=[returns(200, "The process answers.", Alive)],
        store=False,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Answer ``{"status": "ok"}``, touching nothing outside the process."""
        resp.media = Alive(status="ok").media()

    @operation(
        "headLiveness",
        summary="Liveness, without a body",
        tag="health",
        access=PUBLIC,
        answers=[no_body(200, "The process answers.")],
        store=False,
    )
    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer as ``GET /healthz`` does, without a body (for uptime checkers)."""
        self.on_get(req, resp)


class Readiness:
    """``GET /readyz``: 200 ready or degraded, 503 unavailable, from the latest probes."""

    def __init__(self, monitor: HealthMonitor) -> None:
        self._monitor = monitor

    @operation(
        "getReadiness",
        summary="Readiness",
        tag="health",
        access=PUBLIC,
        answers=[
            returns(
                200, "Ready; or degraded: the broker is down, intake accepts.", ReadinessReport
            ),
            returns(503, "Unavailable: the database is down.", ReadinessReport),
        ],
        store=False,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Answer the latest outcome of every probe, which run in the background."""
        report = self._monitor.report()
        resp.status = falcon.code_to_http_status(report.status_code)
        resp.media = ReadinessReport.model_validate(report.body).media()

    @operation(
        "headReadiness",
        summary="Readiness, without a body",
        tag="health",
        access=PUBLIC,
        answers=[
            no_body(200, "Ready; or degraded: the broker is down, intake accepts."),
            no_body(503, "Unavailable: the database is down."),
        ],
        store=False,
    )
    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the status ``GET /readyz`` would, without a body (for uptime checkers)."""
        self.on_get(req, resp)
