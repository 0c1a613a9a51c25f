"""The worker's composition root: ``dramatiq actors.worker:setup``.

``setup`` reads the settings once, configures logging, connects the SQL store (which
must be migrated) and the vendor adapters, builds the broker with the worker's
middleware, makes it Dramatiq's global broker (the only ``set_broker`` call in the
code base) and registers one actor per pipeline step.

Worker middleware, on top of Dramatiq's defaults (see ``infra.bus.broker``):

- ``FailureRecorder``: keeps why each dead letter failed, and reports every failure to
  the job's progress;
- ``QueueMaintenance``: a killed worker's messages return within
  ``heartbeat_timeout + maintenance_interval + 1 s`` (about 41 s with the defaults);
- ``WorkerMetrics`` (Dramatiq's Prometheus middleware) when
  ``settings.worker.prometheus_port`` is above 0, with its multiprocess files under
  ``<data_dir>/prometheus``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from actors.registry import WorkerPorts, build_throttles, register_actors
from actors.shell import progress_on_failure
from infra.bus.broker import SwitchboardBroker, build_broker
from infra.bus.failures import FailureRecorder
from infra.bus.log_filters import RedactMessages
from infra.bus.maintenance import QueueMaintenance
from infra.bus.publisher import BrokerPublisher
from infra.embedded import resolve_broker_url
from infra.logs import configure_logging, get_logger
from infra.settings import Settings, load_settings
from infra.store.calls import SqlCallStore
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobProgress
from infra.store.migrate import ensure_migrated
from infra.store.protocols import JobProgress
from infra.vendors.wiring import build_adapters

_log = get_logger(__name__)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the steps' clock)."""
    return datetime.now(UTC)


def metrics_dir(settings: Settings) -> Path:
    """Where the Prometheus multiprocess files of the worker live."""
    return settings.data_dir / "prometheus"


def _configure_prometheus(settings: Settings) -> Any:
    # Imported only when metrics are on: the module creates a directory on import.
    from dramatiq.middleware import prometheus

    directory = metrics_dir(settings).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    # Dramatiq 2.2 reads these module globals when it boots and serves (its constructor
    # takes no options); set them from our settings instead of its own env variables.
    prometheus.DB_PATH = str(directory)
    prometheus.HTTP_PORT = settings.worker.prometheus_port
    prometheus.HTTP_HOST = settings.worker.prometheus_host
    return prometheus


def serve_metrics() -> None:
    """The metrics exposition process Dramatiq forks (a process root of its own)."""
    prometheus = _configure_prometheus(load_settings())
    # Dramatiq's own server function, reading the globals configured above.
    prometheus._run_exposition_server()


def metrics_middleware(settings: Settings) -> Middleware:
    """Dramatiq's Prometheus middleware, serving on ``settings.worker.prometheus_port``."""
    prometheus = _configure_prometheus(settings)

    class WorkerMetrics(prometheus.Prometheus):  # type: ignore[misc, name-defined]
        """Prometheus middleware whose exposition process reads our settings."""

        @property
        def forks(self) -> list[Callable[[], None]]:
            return [serve_metrics]

    middleware: Middleware = WorkerMetrics()
    return middleware


def worker_middleware(settings: Settings, recorder: FailureRecorder) -> list[Middleware]:
    """The middleware the worker adds to Dramatiq's defaults."""
    extra: list[Middleware] = [recorder, QueueMaintenance(settings.broker.maintenance_interval_s)]
    if settings.worker.prometheus_port > 0:
        extra.append(metrics_middleware(settings))
    return extra


def compose(
    settings: Settings, url: str, *, ports: WorkerPorts, progress: JobProgress
) -> SwitchboardBroker:
    """Build the worker's broker and register every pipeline actor on it.

    Args:
        settings: The worker's settings.
        url: The broker's Redis URL.
        ports: The step adapters.
        progress: Where the shell and the failure hook record job progress.

    Returns:
        The broker, not yet made global (``setup`` does that).
    """
    # No client: the recorder writes with the broker's own (timeouts, pool).
    recorder = FailureRecorder(settings.broker.namespace, on_failure=progress_on_failure(progress))
    broker = build_broker(settings.broker, url, middleware=worker_middleware(settings, recorder))
    register_actors(
        broker,
        ports=ports,
        publisher=BrokerPublisher(broker),
        progress=progress,
        throttles=build_throttles(broker, settings.steps),
        settings=settings.steps,
    )
    return broker


def setup() -> None:
    """Wire the worker process; run by ``dramatiq actors.worker:setup``.

    Raises:
        DatabaseNotMigrated: The database schema is not at the latest revision.
        ValueError: A vendor is configured incompletely.
    """
    settings = load_settings()
    configure_logging(settings, process="worker", filters=[RedactMessages()])
    url = resolve_broker_url(settings)
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    ensure_migrated(engine)
    store = SqlCallStore(engine)
    adapters = build_adapters(settings, engine=engine, redis_url=url)
    ports = WorkerPorts(
        transcripts=adapters.transcripts,
        analyzer=adapters.analyzer,
        embedder=adapters.embedder,
        vectors=adapters.vectors,
        calls=store,
        callbacks=store,
        health=store,
        checkpoints=adapters.checkpoints,
        now=utc_now,
    )
    broker = compose(settings, url, ports=ports, progress=SqlJobProgress(engine))
    dramatiq.set_broker(broker)
    _log.info("worker wired", adapters=adapters.labels, queues=sorted(broker.queues))
