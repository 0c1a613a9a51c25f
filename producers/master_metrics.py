"""The API's ``/metrics``, served by gunicorn's master on a port of its own.

gunicorn runs the API in several worker processes that come and go (``max_requests``
recycles them; a timed-out one is killed): each counts in multiprocess files under
``<data_dir>/metrics/api`` (``infra.metrics.multiprocess``), and the master, which
outlives them all, adds the files up at each scrape, with the edge's
(``<data_dir>/metrics/edge``: the requests it refused itself, its connections). The
master serves them on ``settings.api.prometheus_host:prometheus_port`` (``/metrics``,
and ``/healthz``), not on the API's own port: a scrape never waits behind stalled
clients for a worker's thread, and the public port exposes no metrics.

gunicorn.conf.py calls ``start`` from ``on_starting`` (in the master, before it binds
the API's port and forks any worker: the directory is emptied of a previous run's
files, and the workers inherit it) and ``stop`` from ``on_exit``; its ``child_exit``
drops a dead worker's live gauges.
"""

from __future__ import annotations

from infra.health import ProbeServer
from infra.logs import get_logger
from infra.metrics.multiprocess import exposition, metrics_dir, start_fresh
from infra.settings import load_settings

_log = get_logger(__name__)


class MasterMetrics:
    """The master's metrics server, between gunicorn's hooks."""

    def __init__(self) -> None:
        self._server: ProbeServer | None = None

    @property
    def port(self) -> int | None:
        """The port served on, once started (None: not serving)."""
        return None if self._server is None else self._server.port

    def start(self) -> None:
        """Empty the workers' metrics directory, then serve it (unless the port is 0).

        Raises:
            SystemExit: The metrics port cannot be bound: gunicorn then does not start,
                and says why in one line rather than a traceback.
        """
        settings = load_settings()
        api = settings.api
        if api.prometheus_port <= 0:
            return
        directory = metrics_dir(settings.data_dir, "api")
        edge = metrics_dir(settings.data_dir, "edge")  # the edge in front, when there is one
        start_fresh(directory)
        try:
            self._server = ProbeServer(
                api.prometheus_host, api.prometheus_port, None, lambda: exposition(directory, edge)
            )
        except OSError as error:  # the port is taken, or the address not this host's
            _log.error(
                "cannot serve the API's metrics",
                host=api.prometheus_host,
                port=api.prometheus_port,
                error=str(error),
                hint="set SWITCHBOARD_API__PROMETHEUS_PORT to a free port (0: no metrics)",
            )
            raise SystemExit(1) from error
        self._server.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server = None
