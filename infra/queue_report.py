"""``GET /api/queue/status``: the queues, the jobs of the last day and the ticks' crons.

The old service answered ``{"success": true, "queue": {name, health, active, waiting,
failed, completed, delayed, paused, crons}}`` for its one daily-calls queue. The report
keeps that object (for the daily-calls pipeline) and adds every queue and pipeline:

- per queue, from Redis, in the queue states every tool uses (README, "Queue states"):
  ``ready``, ``delayed`` (retry backoff, deferrals), ``in_flight`` (fetched, not
  acked), ``dead_lettered`` and ``oldest_ready_age_s`` (how long the oldest ready
  message has waited; null when none waits). Only the old ``queue`` object keeps the
  old service's words (``waiting``, ``active``);
- per pipeline, from the job store: jobs ``completed`` and ``failed`` in the last 24 h
  (and those still ``running``);
- ``crons``: each tick's crontab (UTC) and its next run;
- ``health``: ``healthy``; ``degraded`` when something was dead-lettered or a job
  failed in the last 24 h; ``unhealthy`` when the broker cannot be read (the counts
  from Redis are then null, and ``broker`` says why).

The old ``queue`` object keeps the old service's two health words, and describes the
daily-calls pipeline alone: ``unhealthy`` only when the broker cannot be read, else
``healthy``. A dead letter or a failed job is not ``unhealthy`` in the new words, and
another pipeline's never concerned this object: the daily-calls pipeline's own show in
its ``dead_lettered`` and ``failed`` counts, and every pipeline's in the top-level
``health`` (``degraded``).

Redis is read with the API's short-timeout probe client, so a frozen broker costs the
request at most that timeout, never the request threads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis

from contracts import CONTRACTS
from contracts.errors import TransientError
from infra.bus.queues import QueueDepth, queue_depths
from infra.settings import DailyCallsSettings
from infra.ticks import TICKS, cron_of, next_fire

DAY = timedelta(hours=24)

PIPELINES: dict[str, tuple[str, ...]] = {
    "post_call": (
        "calls.transcript",
        "calls.analyze",
        "calls.index",
        "calls.persist",
        "calls.callback",
    ),
    "health_check": ("calls.health",),
    "daily_calls": ("daily_calls.tick", "daily_calls.place"),
    "callbacks": ("callbacks.tick", "callbacks.place"),
}
"""The queues each pipeline's steps consume (checked against the contracts by a test)."""

LEGACY_QUEUE = "daily_calls"
"""The pipeline the old service's single ``queue`` object describes."""


class JobCounts(Protocol):
    """Jobs updated since a time, by kind and status (``SqlJobQueries``)."""

    def job_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        """Counts by kind, then status."""
        ...


class QueueReporter:
    """Builds the queue status report.

    Args:
        client: A Redis client with short timeouts.
        namespace: The broker's key namespace.
        jobs: The job store's counts.
        ticks: The daily-calls settings (the ticks' cron).
        clock: The current time, aware.
    """

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        jobs: JobCounts,
        ticks: DailyCallsSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._jobs = jobs
        self._ticks = ticks
        self._clock = clock

    def report(self) -> dict[str, Any]:
        """The report (see the module docstring).

        Raises:
            TransientError: The job store could not be read.
        """
        now = self._clock()
        queues = sorted({c.route.queue for c in CONTRACTS})
        broker_error: str | None = None
        depths: dict[str, QueueDepth] = {}
        try:
            depths = queue_depths(self._client, self._namespace, queues)
        except TransientError as error:
            broker_error = str(error)
        counts = self._jobs.job_counts(now - DAY)
        crons = [
            {
                "name": tick.name,
                "cron": cron_of(self._ticks),
                "next": _iso(next_fire(self._ticks, now)),
            }
            for tick in TICKS
        ]
        dead = sum(d.dead for d in depths.values())
        failed = sum(c.get("failed", 0) for c in counts.values())
        health = "unhealthy" if broker_error else "degraded" if dead or failed else "healthy"
        pipelines = [
            {
                "name": name,
                "queues": list(names),
                "completed": counts.get(name, {}).get("completed", 0),
                "failed": counts.get(name, {}).get("failed", 0),
                "running": sum(
                    n for s, n in counts.get(name, {}).items() if s not in ("completed", "failed")
                ),
            }
            for name, names in PIPELINES.items()
        ]
        return {
            "success": True,
            "health": health,
            "broker": broker_error or "ok",
            "queue": self._legacy(depths, counts, crons, broker_error),
            "queues": [_queue(name, depths.get(name), now) for name in queues],
            "pipelines": pipelines,
            "crons": crons,
            "window_hours": 24,
            "generated_at": _iso(now),
        }

    def _legacy(
        self,
        depths: dict[str, QueueDepth],
        counts: dict[str, dict[str, int]],
        crons: list[dict[str, Any]],
        broker_error: str | None,
    ) -> dict[str, Any]:
        names = PIPELINES[LEGACY_QUEUE]

        def total(field: str) -> int | None:
            if broker_error:
                return None
            return sum(int(getattr(depths[q], field)) for q in names if q in depths)

        jobs = counts.get(LEGACY_QUEUE, {})
        return {
            "name": LEGACY_QUEUE,
            "health": "unhealthy" if broker_error else "healthy",
            "active": total("in_flight"),
            "waiting": total("ready"),
            "delayed": total("delayed"),
            "dead_lettered": total("dead"),
            "completed": jobs.get("completed", 0),
            "failed": jobs.get("failed", 0),
            "paused": 0,
            "crons": [
                {"key": c["name"], "name": c["name"], "pattern": c["cron"], **c} for c in crons
            ],
        }


def _queue(name: str, depth: QueueDepth | None, now: datetime) -> dict[str, Any]:
    return {
        "name": name,
        "ready": depth.ready if depth else None,
        "delayed": depth.delayed if depth else None,
        "in_flight": depth.in_flight if depth else None,
        "dead_lettered": depth.dead if depth else None,
        "oldest_ready_age_s": (depth.oldest_age_s(int(now.timestamp() * 1000)) if depth else None),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
