"""What the API's edge counts: the requests it answers itself, and the connections it holds.

The edge (``infra.edge``) refuses some requests before gunicorn sees them (too slow,
too large, malformed, every connection taken, gunicorn missing or silent): they appear
in no ``switchboard_http_*`` series, so they are counted here, by status code. The edge
is one process; it counts in files of its own directory (``<data_dir>/metrics/edge``),
and gunicorn's master serves them with the workers' (``producers.master_metrics``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EdgeMetrics:
    """The edge's metrics.

    Args:
        registry: Where to register them; None (the edge in production) registers them
            nowhere: they count in the edge's multiprocess files.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.refused = Counter(
            "switchboard_edge_refused_requests_total",
            "Requests the API's edge answered itself, without the app, by status code "
            "(408 too slow, 413/414/431 too large, 400 malformed, 503 every connection taken "
            "or the app not up, 502/504 the app missing or silent).",
            ["status"],
            registry=registry,
        )
        self.connections = Gauge(
            "switchboard_edge_connections",
            "Client connections the API's edge holds now (at most "
            "SWITCHBOARD_API__MAX_CONNECTIONS).",
            registry=registry,
            multiprocess_mode="livesum",
        )
