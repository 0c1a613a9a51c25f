"""The scheduler's composition root: one clock process that turns time into messages.

``python -m scheduler`` (or ``switchboard scheduler``) runs :func:`main`, APScheduler 3
in UTC. Every job acquires or renews the leader lease ``<namespace>:scheduler:leader``
and works only while it holds it:

- the inbox relay, every ``relay_interval_s``: publishes accepted jobs intake could not;
- the stall check, every ``stall_check_interval_s``: re-drives published jobs that made
  no progress for ``stalled_after_s`` (``scheduler.redrive``);
- the cron ticks (``infra.ticks``), every ``daily_calls.tick_every_min`` minutes and
  once at start: ``daily-calls`` (users whose local call time has come, and retries)
  and ``callbacks-due``. Each emits every slot since the last one it recorded, within
  the grace window (``scheduler.ticks``); a slot is a job deduplicated on the slot, so
  two replicas never emit one twice;
- the daily retention run at ``retention.hour_utc`` (unless ``retention.scheduled`` is
  off): finished records older than their retention are deleted, a bounded number per
  run (``scheduler.retention``). It needs the vector index, built for it alone.

APScheduler 3 cannot share a job store between processes (FIELD-NOTES), so the lease is
what makes a second scheduler harmless. A tick that finds Redis unreachable logs one
line and waits for the next. ``/healthz``, ``/readyz`` (ready while the broker answers)
and ``/metrics`` are served on ``scheduler.prometheus_port``: the ticks and re-drives
(``scheduler.metrics``) and, while this replica leads, the queues' state and the relay's
backlog, read at each scrape (``infra.metrics.queue_state``). SIGTERM/SIGINT shut the
scheduler down and release the lease.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from types import FrameType
from typing import Protocol

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from contracts.errors import TransientError
from infra.bus.broker import BrokerProbe
from infra.bus.dispatch import InlineDispatcher
from infra.bus.publisher import connect_publisher
from infra.embedded import resolve_broker_url
from infra.health import Dependency, HealthMonitor, ProbeServer
from infra.intake import Intake
from infra.lease import RedisLease
from infra.local_adapters import (
    LocalAdapterRefused,
    broker_label,
    check_embedded,
    database_label,
    embedded_in_use,
)
from infra.logs import configure_logging, get_logger
from infra.metrics.queue_state import QueueStateCollector
from infra.queue_report import PIPELINES
from infra.retention import Retention, retention_of
from infra.settings import SchedulerSettings, Settings, load_settings
from infra.store.engine import create_engine, ping
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import DatabaseNotMigrated, ensure_migrated
from infra.store.slots import SqlSchedulerSlots
from infra.ticks import TICKS, TickSpec, cron_of, trigger_of
from scheduler.metrics import LAST_TICK, TICKS_RUN, TICKS_SKIPPED
from scheduler.redrive import redrive_stalled
from scheduler.relay import relay_once
from scheduler.retention import apply_retention, daily_trigger
from scheduler.ticks import emit_due_slots

_log = get_logger(__name__)

DAILY_GRACE_S = 3 * 3600
"""How late a daily job may still start (APScheduler drops later fires)."""


class Lease(Protocol):
    """The leader lease a tick needs (``infra.lease.RedisLease`` in production)."""

    def acquire(self) -> bool:
        """Take or renew the lease; return whether we hold it."""
        ...

    def release(self) -> None:
        """Give the lease up if we hold it."""
        ...


class LeaderTick:
    """A tick that runs ``work`` only while this process holds the lease.

    Args:
        lease: The leader lease, acquired or renewed on every call.
        work: What the leader does each tick; returns a count for the log.
        name: The tick's name, in its log lines.
    """

    def __init__(self, lease: Lease, work: Callable[[], int], name: str = "tick") -> None:
        self._lease = lease
        self._work = work
        self._name = name
        self.leading = False

    def __call__(self) -> int | None:
        """Run one tick; return the work's count, or None when another process leads.

        A broker or database outage skips the tick with one warning line (held back
        when it repeats): the next tick tries again. A tick run as the leader is
        counted, with its time (``scheduler.metrics``).
        """
        try:
            leading = self._lease.acquire()
            if leading != self.leading:
                _log.info("scheduler.leadership", leading=leading, tick=self._name)
                self.leading = leading
            if not leading:
                return None
            done = self._work()
        except TransientError as error:
            TICKS_SKIPPED.labels(self._name).inc()
            _log.warning("scheduler.tick_skipped", tick=self._name, error=str(error))
            return None
        TICKS_RUN.labels(self._name).inc()
        LAST_TICK.labels(self._name).set_to_current_time()
        return done


def build_scheduler(
    settings: SchedulerSettings,
    relay: Callable[[], object],
    stalls: Callable[[], object],
    *,
    ticks: Mapping[str, Callable[[], object]] | None = None,
    tick_trigger: BaseTrigger | None = None,
    tick_grace_s: int = 1800,
    daily: Mapping[str, tuple[Callable[[], object], BaseTrigger]] | None = None,
) -> BlockingScheduler:
    """A blocking APScheduler running the relay, the stall check and the cron ticks.

    Every job runs once now; the ticks then follow ``tick_trigger`` (a late fire is
    still run within ``tick_grace_s``, and catches up on the slots it missed). The
    ``daily`` jobs (retention) run only on their own trigger, never at start: a
    scheduler restarted during the day does not delete in working hours.
    """
    scheduler = BlockingScheduler(timezone=UTC)
    for job_id, (work, trigger) in (daily or {}).items():
        scheduler.add_job(
            work,
            trigger,
            id=job_id,
            coalesce=True,
            max_instances=1,
            # A fire delayed by a busy scheduler is still wanted the same night.
            misfire_grace_time=DAILY_GRACE_S,
        )
    for job_id, tick in (ticks or {}).items():
        if tick_trigger is None:
            raise ValueError("cron ticks need a trigger")
        scheduler.add_job(
            tick,
            tick_trigger,
            id=job_id,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=tick_grace_s,
        )
    for job_id, tick, interval_s in (
        ("relay", relay, settings.relay_interval_s),
        ("stalled-jobs", stalls, settings.stall_check_interval_s),
    ):
        scheduler.add_job(
            tick,
            "interval",
            seconds=interval_s,
            id=job_id,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            # APScheduler's default grace is 1 s: a tick delayed by a slow previous one
            # would be dropped silently (FIELD-NOTES). A late tick is still worth running.
            misfire_grace_time=max(1, int(interval_s * 2)),
        )
    return scheduler


def probe_server(
    settings: Settings, broker: BrokerProbe, database: Callable[[], None]
) -> ProbeServer:
    """The scheduler's ``/healthz``, ``/readyz`` and ``/metrics`` (started by the caller)."""
    monitor = HealthMonitor(
        [
            Dependency("broker", broker_label(settings), broker, True),
            Dependency("database", database_label(settings), database, required=False),
        ],
        interval_s=settings.health.interval_s,
        timeout_s=settings.health.timeout_s,
    )
    monitor.start()
    return ProbeServer(
        settings.scheduler.prometheus_host,
        settings.scheduler.prometheus_port,
        monitor,
        lambda: (CONTENT_TYPE_LATEST, generate_latest(REGISTRY)),
    )


def run(settings: Settings) -> None:
    """Run the scheduler until SIGTERM or SIGINT.

    Raises:
        DatabaseNotMigrated: The database schema is not at the head revision.
        LocalAdapterRefused: Production would run the embedded broker or database.
    """
    configure_logging(settings, process="scheduler")
    # APScheduler logs every run of every job at INFO: one line per tick is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    check_embedded(settings)
    url = resolve_broker_url(settings)
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    try:
        ensure_migrated(engine)
        ledger = SqlJobLedger(engine)
        publisher = connect_publisher(settings.broker, url)
        lease = RedisLease.connect(
            url,
            f"{settings.broker.namespace}:scheduler:leader",
            settings.scheduler.lease_ttl_s,
            socket_timeout_s=settings.broker.socket_timeout_s,
        )
        config = settings.scheduler
        closers: list[Callable[[], None]] = []
        probe = BrokerProbe(url, settings.health.timeout_s)
        # Registered here, in this process's registry only: the queues' state is
        # exported by the scheduler alone, and by the replica that leads.
        collector = QueueStateCollector(
            probe.client,
            settings.broker.namespace,
            PIPELINES,
            ledger,
            leading=lambda: lease.held,
        )
        server = (
            probe_server(settings, probe, lambda: ping(engine)) if config.prometheus_port else None
        )
        REGISTRY.register(collector)
        try:
            if server is not None:
                server.start()
            intake = Intake(ledger, InlineDispatcher(publisher, ledger))
            daily_jobs = _daily_jobs(
                settings, lambda: retention_of(settings, engine, url), lease, closers
            )
            slots = SqlSchedulerSlots(engine)
            daily = settings.daily_calls
            scheduler = build_scheduler(
                config,
                LeaderTick(
                    lease,
                    lambda: relay_once(ledger, publisher, min_age_s=config.relay_min_age_s),
                    "relay",
                ),
                LeaderTick(
                    lease,
                    lambda: redrive_stalled(
                        ledger,
                        publisher,
                        idle_s=config.stalled_after_s,
                        max_redrives=config.max_redrives,
                    ),
                    "stalled-jobs",
                ),
                ticks={
                    spec.name: LeaderTick(
                        lease,
                        partial(
                            _emit,
                            spec,
                            intake=intake,
                            slots=slots,
                            every=timedelta(minutes=daily.tick_every_min),
                            grace=timedelta(minutes=daily.grace_min),
                        ),
                        spec.name,
                    )
                    for spec in TICKS
                },
                tick_trigger=trigger_of(daily),
                tick_grace_s=daily.grace_min * 60,
                daily=daily_jobs,
            )
            _stop_on_signals(scheduler)
            _log.info(
                "scheduler.started",
                relay_interval_s=config.relay_interval_s,
                ticks=[spec.name for spec in TICKS],
                cron=cron_of(daily),
                daily=sorted(daily_jobs),
                local=embedded_in_use(settings),
            )
            scheduler.start()
            _release(lease)
            _log.info("scheduler.stopped")
        finally:
            REGISTRY.unregister(collector)
            while closers:
                closers.pop()()
            if server is not None:
                server.stop()
            probe.close()
            lease.close()
            publisher.close()
    finally:
        engine.dispose()


def _daily_jobs(
    settings: Settings,
    open_retention: Callable[[], tuple[Retention, Callable[[], None]]],
    lease: Lease,
    closers: list[Callable[[], None]],
) -> dict[str, tuple[Callable[[], object], BaseTrigger]]:
    """The daily retention run, under the lease, when it is on."""
    config = settings.retention
    if not config.scheduled:
        return {}
    retention, close = open_retention()
    closers.append(close)
    work = LeaderTick(lease, partial(apply_retention, retention, config), "retention")
    return {"retention": (work, daily_trigger(config))}


def _emit(
    spec: TickSpec,
    *,
    intake: Intake,
    slots: SqlSchedulerSlots,
    every: timedelta,
    grace: timedelta,
) -> int:
    return emit_due_slots(
        spec, intake=intake, slots=slots, now=datetime.now(UTC), every=every, grace=grace
    )


def _release(lease: Lease) -> None:
    try:
        lease.release()
    except TransientError as error:
        # It expires by itself within its TTL; another scheduler then takes over.
        _log.warning("scheduler.lease_not_released", error=str(error))


def _stop_on_signals(scheduler: BlockingScheduler) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        _log.info("scheduler.stopping", signal=signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main() -> None:
    """Entry point of ``python -m scheduler``: settings from the environment, then run."""
    try:
        run(load_settings())
    except (DatabaseNotMigrated, LocalAdapterRefused) as error:
        sys.stderr.write(f"scheduler: {error}\n")
        raise SystemExit(2) from error
