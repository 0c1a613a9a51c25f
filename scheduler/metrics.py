"""The scheduler's own metrics, in its process's registry (one process: no files).

Ticks are counted by name (``relay``, ``stalled-jobs``, ``daily-calls``,
``callbacks-due``), and only the runs of the replica holding the lease, so a silent
scheduler shows as a ``switchboard_scheduler_last_tick_timestamp_seconds`` that stops
moving. The queues' state and the relay's backlog are read at scrape time by
``infra.metrics.queue_state.QueueStateCollector``, registered by ``scheduler.main``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TICKS_RUN = Counter(
    "switchboard_scheduler_ticks_total",
    "Ticks this scheduler ran as the leader, by tick.",
    ["tick"],
)
LAST_TICK = Gauge(
    "switchboard_scheduler_last_tick_timestamp_seconds",
    "When this scheduler last ran the tick as the leader (unix seconds).",
    ["tick"],
)
TICKS_SKIPPED = Counter(
    "switchboard_scheduler_ticks_skipped_total",
    "Ticks skipped because Redis or the database could not be reached, by tick.",
    ["tick"],
)
SLOTS_EMITTED = Counter(
    "switchboard_scheduler_slots_emitted_total",
    "Cron tick slots emitted by this scheduler (duplicates of another replica's included).",
    ["tick"],
)
SLOTS_SKIPPED = Counter(
    "switchboard_scheduler_slots_skipped_total",
    "Missed tick slots older than the grace window, not emitted.",
    ["tick"],
)
REDRIVEN = Counter(
    "switchboard_jobs_redriven_total", "Stalled jobs whose first message was republished."
)
GIVEN_UP = Counter(
    "switchboard_jobs_stalled_failed_total", "Stalled jobs failed after their last re-drive."
)
