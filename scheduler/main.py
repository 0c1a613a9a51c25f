"""The scheduler's composition root: one clock process that turns time into messages.

``python -m scheduler`` (or ``switchboard scheduler``) runs :func:`main`. Every
``settings.scheduler.relay_interval_s`` a tick acquires or renews the leader lease
``<namespace>:scheduler:leader`` and, only while it holds it, relays pending jobs to the
bus. APScheduler 3 cannot share a job store between processes (FIELD-NOTES), so the
lease is what makes a second scheduler harmless. SIGTERM/SIGINT shut the scheduler
down and release the lease.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol

from apscheduler.schedulers.blocking import BlockingScheduler

from infra.bus.publisher import connect_publisher
from infra.embedded import resolve_broker_url
from infra.lease import RedisLease
from infra.logs import configure_logging, get_logger
from infra.settings import SchedulerSettings, Settings, load_settings
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import DatabaseNotMigrated, ensure_migrated
from scheduler.relay import relay_once

_log = get_logger(__name__)


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
    """

    def __init__(self, lease: Lease, work: Callable[[], int]) -> None:
        self._lease = lease
        self._work = work
        self.leading = False

    def __call__(self) -> int | None:
        """Run one tick; return the work's count, or None when another process leads.

        Raises:
            TransientError: Redis was unreachable (APScheduler logs it; the next tick
                tries again).
        """
        leading = self._lease.acquire()
        if leading != self.leading:
            _log.info("scheduler.leadership", leading=leading)
            self.leading = leading
        if not leading:
            return None
        return self._work()


def build_scheduler(settings: SchedulerSettings, tick: Callable[[], object]) -> BlockingScheduler:
    """A blocking APScheduler running ``tick`` every ``relay_interval_s``, starting now."""
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        tick,
        "interval",
        seconds=settings.relay_interval_s,
        id="relay",
        next_run_time=datetime.now(UTC),
        coalesce=True,
        max_instances=1,
        # APScheduler's default grace is 1 s: a tick delayed by a slow previous one would
        # be dropped silently (FIELD-NOTES). A late tick is still worth running.
        misfire_grace_time=max(1, int(settings.relay_interval_s * 2)),
    )
    return scheduler


def run(settings: Settings) -> None:
    """Run the scheduler until SIGTERM or SIGINT.

    Raises:
        DatabaseNotMigrated: The database schema is not at the head revision.
    """
    configure_logging(settings, process="scheduler")
    # APScheduler logs every run of every job at INFO: one line per tick is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
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
        try:
            tick = LeaderTick(
                lease,
                lambda: relay_once(ledger, publisher, min_age_s=settings.scheduler.relay_min_age_s),
            )
            scheduler = build_scheduler(settings.scheduler, tick)
            _stop_on_signals(scheduler)
            _log.info("scheduler.started", interval_s=settings.scheduler.relay_interval_s)
            scheduler.start()
            lease.release()
            _log.info("scheduler.stopped")
        finally:
            lease.close()
    finally:
        engine.dispose()


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
    except DatabaseNotMigrated as error:
        sys.stderr.write(f"scheduler: {error}\n")
        raise SystemExit(2) from error
