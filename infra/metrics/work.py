"""What the worker's processes measure: each message's wait and run, each job's whole time.

- ``switchboard_message_queue_wait_seconds{queue, actor}``: from the moment a message
  became ready (enqueued, or its retry's or deferral's eta) to the moment a worker
  started it; time spent prefetched in a worker's memory counts as waiting;
- ``switchboard_message_run_seconds{queue, actor}``: how long the worker ran it, the
  wait for a vendor's throttle included, whatever the outcome;
- ``switchboard_job_duration_seconds{pipeline}``: from the job's acceptance (its inbox
  row committed) to its completion (its last message completed), observed once per
  completion by the process that completed it;
- ``switchboard_outbound_requests_total{channel, outcome}``: requests that reach out
  to a person (``call``: placing a call), by outcome (``OUTBOUND_OUTCOMES``).

Dramatiq's own metrics (``dramatiq_*``, durations in milliseconds) keep their names.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram

WAIT_BUCKETS_S: Final = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""An idle consumer polls up to 1 s apart (FIELD-NOTES); a backlog waits minutes."""

RUN_BUCKETS_S: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""Local steps take milliseconds, vendor calls seconds; 120 s is the default time limit."""

JOB_BUCKETS_S: Final = (
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
    21600.0, 86400.0,
)  # fmt: skip
"""An idle post-call pipeline takes about 1.6 s; a job re-driven or replayed, hours."""

OutboundOutcome = Literal["sent", "failed", "refused", "unknown"]
OUTBOUND_OUTCOMES: Final = ("sent", "failed", "refused", "unknown")
"""sent: the provider took it; failed: it did not arrive, retried (``TransientError``);
refused: the provider said no (``PermanentError``); unknown: sent, no answer came back
(``OutcomeUnknown``: for review, never repeated)."""


class WorkMetrics:
    """The worker's metrics; in production they count in the role's multiprocess files.

    Args:
        registry: Where to register them; None (the worker's processes) registers them
            nowhere: the probe process serves the files (``infra.metrics.multiprocess``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.queue_wait = Histogram(
            "switchboard_message_queue_wait_seconds",
            "Time from a message becoming ready (enqueued, or its eta) to a worker starting it.",
            ["queue", "actor"],
            buckets=WAIT_BUCKETS_S,
            registry=registry,
        )
        self.run_time = Histogram(
            "switchboard_message_run_seconds",
            "Time a worker spent on a message (a vendor throttle's wait included), any outcome.",
            ["queue", "actor"],
            buckets=RUN_BUCKETS_S,
            registry=registry,
        )
        self.job_duration = Histogram(
            "switchboard_job_duration_seconds",
            "Time from a job's acceptance to its completion, by pipeline.",
            ["pipeline"],
            buckets=JOB_BUCKETS_S,
            registry=registry,
        )
        self.outbound = Counter(
            "switchboard_outbound_requests_total",
            "Requests reaching out to people (placing a call…), by channel and outcome.",
            ["channel", "outcome"],
            registry=registry,
        )

    def job_completed(self, pipeline: str, seconds: float) -> None:
        """Observe a job's time from accepted to completed (``JobObserver``)."""
        self.job_duration.labels(pipeline).observe(max(seconds, 0.0))

    def outbound_request(self, channel: str, outcome: OutboundOutcome) -> None:
        """Count one outgoing request by its outcome."""
        self.outbound.labels(channel, outcome).inc()
