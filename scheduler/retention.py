"""The daily retention run: the configured retention, applied by the scheduler's leader.

Once a day at ``retention.hour_utc`` (UTC) the leader deletes every kind's finished
records older than its configured days (``infra.retention``), at most
``retention.max_per_run`` of each kind, so one run holds the database for a bounded
time; a backlog (the first run on an old database) is worked off over the following
days, and each run that stopped at its bound says so in its log line. The run is
recorded in the audit log under ``scheduler`` when it deleted something, and counted
in ``switchboard_retention_deleted_total`` by kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger
from prometheus_client import Counter

from infra.logs import get_logger
from infra.retention import Retention, configured_rules
from infra.settings import RetentionSettings

_log = get_logger(__name__)

DELETED = Counter(
    "switchboard_retention_deleted_total",
    "Records deleted by the scheduler's daily retention run.",
    ["kind"],
)

ACTOR = "scheduler"
"""Who the audit log says ran it."""


def daily_trigger(settings: RetentionSettings) -> CronTrigger:
    """Every day at ``hour_utc``:00 UTC."""
    return CronTrigger(hour=settings.hour_utc, minute=0, timezone=UTC)


def apply_retention(
    retention: Retention,
    settings: RetentionSettings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Apply the configured retention once; return how many records went.

    Raises:
        TransientError: The database or the vector index is unavailable (the next
            day's run carries on where this one stopped).
    """
    report = retention.run(
        configured_rules(settings, clock()),
        actor=ACTOR,
        reason="the configured retention (daily run)",
        limit=settings.max_per_run,
    )
    for result in report.results:
        if result.records:
            DELETED.labels(result.rule.kind).inc(result.records)
    more_left = [r.rule.kind for r in report.results if r.more_left]
    _log.info(
        "retention.applied",
        summary=report.summary(),
        rows=report.total.total(),
        more_left=more_left,
    )
    return sum(result.records for result in report.results)
