"""The worker's composition root: ``python -m actors actors.worker:setup``.

``main`` runs Dramatiq's own command line (every option of ``dramatiq`` works) with our
logging instead of Dramatiq's: Dramatiq's main process and each of its children would
otherwise call ``logging.basicConfig`` with its plain-text format. The main process
configures ``infra.logs`` and passes ``--skip-logging``; the children inherit that
configuration through the fork, so their lines before ``setup`` (imports, Dramatiq's
boot) are ours too, and each reconfigures it in ``setup`` onto the pipe Dramatiq relays
its output through. What Dramatiq's main process relays is written to its ``stderr``,
which ``infra.raw_output`` keeps to JSON lines when the logs are JSON (a crashed
child's traceback included).

``setup`` reads the settings once, configures logging, connects the SQL store (which
must be migrated) and the adapters the pipelines use, binds every workflow's pipeline
(``actors.pipelines``) to its ports, builds the broker with the worker's middleware,
makes it Dramatiq's global broker (the only ``set_broker`` call in the code base) and
registers one actor per step.

Worker middleware, on top of Dramatiq's defaults (see ``infra.bus.broker``):

- ``FailureRecorder``: keeps why each dead letter failed, and reports every failure to
  the job's progress;
- ``QueueMaintenance``: a killed worker's messages return within
  ``heartbeat_timeout + maintenance_interval + 1 s`` (about 41 s with the defaults);
- when ``settings.worker.prometheus_port`` is above 0: Dramatiq's Prometheus metrics,
  ``MessageTimings`` (each message's queue wait and run time) and one forked process
  serving ``/metrics``, ``/healthz`` and ``/readyz`` on that port
  (``serve_worker_probes``). Every worker process counts in multiprocess files under
  ``<data_dir>/metrics/worker``, which ``main`` empties before Dramatiq forks them
  (``infra.metrics.multiprocess``); the steps' job progress reports each job's time
  from acceptance to completion and the telephony port counts calls by outcome into
  the same files (``infra.metrics.work``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import dramatiq.cli
import dramatiq.worker
from dramatiq.middleware import Middleware

from actors.pipeline import BoundStep
from actors.pipelines import callbacks, daily_calls, health_check, post_call
from actors.registry import Bus, message_refs, register_steps, resolve_options
from actors.shell import progress_on_failure
from infra.bus.broker import BrokerProbe, SwitchboardBroker, build_broker
from infra.bus.deferral import CurrentMessageDeferral
from infra.bus.failures import FailureRecorder
from infra.bus.log_filters import RedactMessages
from infra.bus.maintenance import QueueMaintenance
from infra.bus.publisher import BrokerPublisher
from infra.bus.throttle import Throttle
from infra.bus.timings import MessageTimings
from infra.embedded import resolve_broker_url
from infra.health import Dependency, HealthMonitor, ProbeServer
from infra.local_adapters import broker_label, check_embedded, database_label, embedded_in_use
from infra.logs import configure_logging, get_logger
from infra.metrics.multiprocess import enable, exposition, metrics_dir, start_fresh
from infra.metrics.outbound import CountedTelephony
from infra.metrics.work import WorkMetrics
from infra.settings import Settings, VendorLimits, load_settings
from infra.store.calls import SqlCallStore
from infra.store.dialing import SqlCallBook, call_book
from infra.store.engine import create_engine, ping
from infra.store.migrate import ensure_migrated
from infra.store.progress import SqlJobProgress
from infra.store.protocols import JobProgress
from infra.vendors.wiring import Adapters

CONSUMER_RESTART_DELAY_S = 1.0
"""How soon a consumer that lost the broker tries again (Dramatiq's default: 3 s)."""

SETUP_FAILED = 5
"""The exit code of a worker process whose setup failed (Dramatiq uses 1 to 4)."""

VENDOR_PROBE_INTERVAL_S = 30.0
"""Vendors are probed for the readiness report less often than the broker."""

_log = get_logger(__name__)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the steps' clock)."""
    return datetime.now(UTC)


def bind_pipelines(
    adapters: Adapters,
    store: SqlCallStore,
    book: SqlCallBook,
    metrics: WorkMetrics | None = None,
) -> list[BoundStep]:
    """Every workflow's steps bound to the adapters they use (and only those are built).

    With ``metrics``, each call placed is counted by outcome.
    """
    telephony = adapters.telephony()
    outbound = daily_calls.OutboundCallPorts(
        plan=book,
        book=book,
        telephony=telephony if metrics is None else CountedTelephony(telephony, metrics),
    )
    return [
        *post_call.PIPELINE.bind(
            post_call.PostCallPorts(
                transcripts=adapters.transcripts(),
                analyzer=adapters.analyzer(),
                embedder=adapters.embedder(),
                vectors=adapters.vectors(),
                calls=store,
                callbacks=store,
                now=utc_now,
            )
        ),
        *health_check.PIPELINE.bind(
            health_check.HealthCheckPorts(checkpoints=adapters.checkpoints(), health=store)
        ),
        *daily_calls.PIPELINE.bind(outbound),
        *callbacks.PIPELINE.bind(outbound),
    ]


def vendor_limits(settings: Settings) -> dict[str, VendorLimits]:
    """Each rate-limited vendor's limits, by the name its adapters give."""
    return {
        "openai": settings.openai,
        "pinecone": settings.pinecone,
        "qdrant": settings.qdrant,
        "elevenlabs": settings.elevenlabs,
        "callkaro": settings.callkaro,
    }


def build_throttles(
    broker: SwitchboardBroker, settings: Settings, vendors: set[str], lease_s: float
) -> dict[str, Throttle]:
    """One Redis throttle per vendor the steps call, shared by every worker on the bus.

    The lease outlives the longest time limit, so a slot held by a killed process frees
    itself only after its step could no longer be running.
    """
    limits = vendor_limits(settings)
    return {
        vendor: Throttle(
            broker.client,
            f"{broker.namespace}:throttle:{vendor}",
            concurrency=limits[vendor].concurrency,
            rate_per_s=limits[vendor].rate_per_s,
            wait_timeout_s=settings.steps.throttle_wait_s,
            lease_s=lease_s,
        )
        for vendor in sorted(vendors)
    }


def worker_metrics_dir(settings: Settings) -> Path:
    """Where the worker's processes count their metrics (emptied by ``main``)."""
    return metrics_dir(settings.data_dir, "worker")


def _dramatiq_prometheus(settings: Settings) -> Any:
    # Imported only when metrics are on: the module creates a directory on import.
    from dramatiq.middleware import prometheus

    directory = worker_metrics_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    # Dramatiq 2.2 reads this module global when the middleware boots (its constructor
    # takes no options); set it from our settings instead of its own env variables.
    prometheus.DB_PATH = str(directory)
    return prometheus


def serve_worker_probes() -> None:
    """The worker's probe process, forked by Dramatiq (a process root of its own).

    Serves ``/metrics`` (every worker process's multiprocess files), ``/healthz`` and
    ``/readyz`` on ``settings.worker.prometheus_port``: ready while the broker answers;
    the database and the vendors are reported too.
    """
    settings = load_settings()
    configure_logging(settings, process="worker-probes")
    url = resolve_broker_url(settings)
    engine = create_engine(settings.database_url)
    adapters = Adapters(settings, engine=engine, redis_url=url)
    # Bound only to build the same adapters the worker's steps use, so their probes
    # (and labels) are the ones reported; no step runs in this process.
    bind_pipelines(adapters, SqlCallStore(engine), call_book(engine, settings.daily_calls))
    broker = BrokerProbe(url, settings.health.timeout_s)
    monitor = HealthMonitor(
        [
            Dependency("broker", broker_label(settings), broker, required=True),
            Dependency("database", database_label(settings), lambda: ping(engine), False),
            *(
                Dependency(p.name, p.label, p.ping, False, VENDOR_PROBE_INTERVAL_S)
                for p in adapters.probes()
            ),
        ],
        adapters=adapters.labels,
        interval_s=settings.health.interval_s,
        timeout_s=settings.health.timeout_s,
    )
    directory = worker_metrics_dir(settings)
    monitor.start()
    server = ProbeServer(
        settings.worker.prometheus_host,
        settings.worker.prometheus_port,
        monitor,
        lambda: exposition(directory),
    )
    server.serve_forever()


def worker_middleware(
    settings: Settings, recorder: FailureRecorder, metrics: WorkMetrics | None = None
) -> list[Middleware]:
    """The middleware the worker adds to Dramatiq's defaults.

    With ``metrics`` (and ``settings.worker.prometheus_port`` above 0): each message's
    wait and run time, Dramatiq's own metrics and the probe process.
    """
    extra: list[Middleware] = [recorder, QueueMaintenance(settings.broker.maintenance_interval_s)]
    if metrics is not None and settings.worker.prometheus_port > 0:
        extra.append(MessageTimings(metrics))
        prometheus = _dramatiq_prometheus(settings)

        serve = settings.worker.serve_probes

        class WorkerMetrics(prometheus.Prometheus):  # type: ignore[misc, name-defined]
            """Dramatiq's metrics; our probe process serves them with health and readiness.

            Under ``switchboard worker`` only the first process group forks the probe
            process: every group counts in the same directory, one port serves them all.
            """

            @property
            def forks(self) -> list[Callable[[], None]]:
                return [serve_worker_probes] if serve else []

        extra.append(WorkerMetrics())
    return extra


def compose(
    settings: Settings,
    url: str,
    *,
    steps: Sequence[BoundStep],
    progress: JobProgress,
    metrics: WorkMetrics | None = None,
) -> SwitchboardBroker:
    """Build the worker's broker and register every step as an actor on it.

    Raises:
        ValueError: An actor override names no step, or two steps share a name.

    Returns:
        The broker, not yet made global (``setup`` does that).
    """
    refs = message_refs(steps)
    options = resolve_options(steps, settings.steps, settings.actors)
    # No client: the recorder writes with the broker's own (timeouts, pool).
    recorder = FailureRecorder(
        settings.broker.namespace, on_failure=progress_on_failure(progress, refs)
    )
    broker = build_broker(
        settings.broker, url, middleware=worker_middleware(settings, recorder, metrics)
    )
    longest_ms = max((o.time_limit_ms or 0) for o in options.values()) if options else 0
    bus = Bus(
        publisher=BrokerPublisher(broker),
        progress=progress,
        refs=refs,
        throttles=build_throttles(
            broker,
            settings,
            {vendor for step in steps for vendor in step.vendors},
            lease_s=longest_ms / 1000 + 30,
        ),
        deferral=CurrentMessageDeferral(broker, max_delay_ms=settings.steps.defer_max_ms),
    )
    register_steps(broker, steps, bus=bus, options=options)
    return broker


KEEP_METRICS = "--keep-metrics"
"""``python -m actors`` option: count in the metrics directory without emptying it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run Dramatiq's worker command (``python -m actors``) with our logging.

    Args:
        argv: Dramatiq's arguments (default: the command line's), e.g.
            ``["actors.worker:setup", "--processes", "2"]``; ``--verbose`` has no
            effect: the level is ``settings.log_level``. ``--keep-metrics`` (ours, not
            Dramatiq's) leaves the metrics directory as it is, for a supervisor that
            emptied it once for several process groups.

    Returns:
        Dramatiq's exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    settings = load_settings()
    configure_logging(settings, process="worker", filters=[RedactMessages()])
    kept = KEEP_METRICS in args
    args = [arg for arg in args if arg != KEEP_METRICS]
    if settings.worker.prometheus_port > 0:
        # Before the fork: the worker processes inherit a directory to count in, empty
        # unless a supervisor (``switchboard worker``) emptied it for every group.
        directory = worker_metrics_dir(settings)
        if kept:
            enable(directory)
        else:
            start_fresh(directory)
    # Dramatiq reloads on SIGHUP by exec'ing sys.argv: make that this same command.
    sys.argv = [sys.executable, "-m", "actors", *args]
    parser = dramatiq.cli.make_argument_parser()  # type: ignore[no-untyped-call]
    parsed = parser.parse_args([*args, "--skip-logging"])
    code: int = dramatiq.cli.main(parsed)  # type: ignore[no-untyped-call]
    return code


def setup() -> None:
    """Wire the worker process; run by ``python -m actors actors.worker:setup``.

    A failure is logged (one line, its traceback in it) and ends the process with
    ``SETUP_FAILED``: Dramatiq runs this in a child process, which multiprocessing would
    otherwise end by printing the bare traceback. Dramatiq's main process sees the
    child exit and stops.

    Raises:
        SystemExit: Setup failed, e.g. the database schema is not at the latest
            revision (``DatabaseNotMigrated``), production would run a local adapter
            that is not allowed (``LocalAdapterRefused``), a vendor is configured
            incompletely or an actor override names no actor (``ValueError``).
    """
    settings = load_settings()
    configure_logging(settings, process="worker", filters=[RedactMessages()])
    try:
        _wire(settings)
    except Exception as error:
        _log.critical(
            "worker setup failed", error=f"{type(error).__name__}: {error}", exc_info=True
        )
        raise SystemExit(SETUP_FAILED) from error


def _wire(settings: Settings) -> None:
    # Read by Dramatiq at each restart; its own knob is an env variable read at import.
    dramatiq.worker.CONSUMER_RESTART_DELAY_SECS = CONSUMER_RESTART_DELAY_S
    check_embedded(settings)
    url = resolve_broker_url(settings)
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    ensure_migrated(engine)
    adapters = Adapters(settings, engine=engine, redis_url=url)
    metrics = WorkMetrics() if settings.worker.prometheus_port > 0 else None
    store, book = SqlCallStore(engine), call_book(engine, settings.daily_calls)
    steps = bind_pipelines(adapters, store, book, metrics)
    progress = SqlJobProgress(engine, observer=metrics)
    broker = compose(settings, url, steps=steps, progress=progress, metrics=metrics)
    dramatiq.set_broker(broker)
    _log.info(
        "worker wired",
        adapters=adapters.labels,
        local=adapters.local + embedded_in_use(settings),
        queues=sorted(broker.queues),
    )
