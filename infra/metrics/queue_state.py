"""The queues and the inbox relay's backlog, read at scrape time (the scheduler's collector).

What is in Redis and in the inbox is one state shared by every process: were each API
and worker process to export it, a ``sum()`` over them would count it once per process.
Only the scheduler registers ``QueueStateCollector``, in its own registry (it writes no
multiprocess files), and only while it holds the leader lease: with several scheduler
replicas one of them exports it. Each scrape reads it afresh:

- per queue (label ``queue``, and ``pipeline``: the pipeline whose step consumes it),
  from Redis with ``infra.bus.queues.queue_depths`` (two round trips for every queue):
  ``switchboard_queue_ready_messages``, ``…_delayed_messages``, ``…_in_flight_messages``,
  ``…_dead_lettered_messages``, and ``switchboard_queue_oldest_ready_age_seconds`` (0
  when nothing waits);
- the relay's backlog, from the inbox: ``switchboard_inbox_pending_jobs`` (accepted,
  first message not known to be published) and
  ``switchboard_inbox_oldest_pending_age_seconds`` (0 when none);
- ``switchboard_queue_state_up`` and ``switchboard_inbox_state_up``: 1 when that read
  worked; when one fails its gauges are left out of the scrape (an alert on them then
  sees no data rather than a false zero) and the failure is logged once;
- ``switchboard_scheduler_leader``: 1 while this scheduler holds the lease (always
  exported, so a replica that does not lead is visible too).

Reads use a client with short timeouts (the readiness probe's), so a frozen Redis costs
a scrape that timeout, not Prometheus's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from contracts.errors import SwitchboardError
from infra.bus.queues import QueueDepth, queue_depths
from infra.logs import get_logger
from infra.store.records import RelayBacklog

_log = get_logger(__name__)

QUEUE_LABELS = ("queue", "pipeline")


class BacklogSource(Protocol):
    """The inbox relay's backlog (``infra.store.jobs.SqlJobLedger``)."""

    def relay_backlog(self) -> RelayBacklog:
        """How many jobs wait for the relay, and since when.

        Raises:
            TransientError: The database could not be read.
        """
        ...


class QueueStateCollector(Collector):
    """Exports the queues' state and the relay's backlog when the scheduler leads.

    Args:
        client: A Redis client with short timeouts.
        namespace: The broker's key namespace.
        pipelines: The queues of each pipeline (``infra.queue_report.PIPELINES``).
        backlog: The inbox.
        leading: Whether this scheduler holds the leader lease now.
        clock: Wall-clock seconds (ages are measured against message timestamps).
    """

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        pipelines: Mapping[str, Sequence[str]],
        backlog: BacklogSource,
        *,
        leading: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._pipeline_of = {queue: name for name, queues in pipelines.items() for queue in queues}
        self._backlog = backlog
        self._leading = leading
        self._clock = clock
        self._failing: set[str] = set()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Every family this collector can export, without reading anything."""
        yield _leader_family()
        yield from _queue_families()
        yield from _inbox_families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the state now (see the module docstring)."""
        leading = self._leading()
        yield _leader_family(1 if leading else 0)
        if not leading:
            return
        yield from self._queues()
        yield from self._inbox()

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "switchboard_queue_state_up", "1 when the queues' state could be read from Redis."
        )
        try:
            depths = queue_depths(self._client, self._namespace, sorted(self._pipeline_of))
        except SwitchboardError as error:
            self._failed("queues", error)
            up.add_metric([], 0)
            yield up
            return
        self._recovered("queues")
        up.add_metric([], 1)
        yield up
        now_ms = int(self._clock() * 1000)
        ready, delayed, in_flight, dead, oldest = _queue_families()
        for queue, depth in depths.items():
            labels = [queue, self._pipeline_of[queue]]
            ready.add_metric(labels, depth.ready)
            delayed.add_metric(labels, depth.delayed)
            in_flight.add_metric(labels, depth.in_flight)
            dead.add_metric(labels, depth.dead)
            oldest.add_metric(labels, _age(depth, now_ms))
        yield from (ready, delayed, in_flight, dead, oldest)

    def _inbox(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "switchboard_inbox_state_up", "1 when the relay's backlog could be read."
        )
        try:
            backlog = self._backlog.relay_backlog()
        except SwitchboardError as error:
            self._failed("inbox", error)
            up.add_metric([], 0)
            yield up
            return
        self._recovered("inbox")
        up.add_metric([], 1)
        yield up
        pending, oldest = _inbox_families()
        pending.add_metric([], backlog.jobs)
        since = backlog.oldest_accepted_at
        oldest.add_metric([], 0 if since is None else max(self._clock() - since.timestamp(), 0))
        yield from (pending, oldest)

    def _failed(self, what: str, error: SwitchboardError) -> None:
        if what not in self._failing:
            _log.warning("metrics.state_unreadable", state=what, error=str(error))
        self._failing.add(what)

    def _recovered(self, what: str) -> None:
        if what in self._failing:
            _log.info("metrics.state_readable", state=what)
        self._failing.discard(what)


def _leader_family(value: float | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "switchboard_scheduler_leader",
        "1 while this scheduler holds the leader lease (and exports the queues' state).",
        value=value,
    )


def _queue_families() -> tuple[GaugeMetricFamily, ...]:
    def family(name: str, documentation: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, labels=QUEUE_LABELS)

    return (
        family("switchboard_queue_ready_messages", "Messages waiting to be fetched."),
        family("switchboard_queue_delayed_messages", "Messages waiting for their eta."),
        family("switchboard_queue_in_flight_messages", "Messages fetched, not yet acked."),
        family("switchboard_queue_dead_lettered_messages", "Messages in the dead-letter queue."),
        family(
            "switchboard_queue_oldest_ready_age_seconds",
            "How long the oldest ready message has waited (0: none waits).",
        ),
    )


def _inbox_families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "switchboard_inbox_pending_jobs",
            "Accepted jobs whose first message is not yet known to be published (the relay's).",
        ),
        GaugeMetricFamily(
            "switchboard_inbox_oldest_pending_age_seconds",
            "How long the oldest of them has waited (0: none).",
        ),
    )


def _age(depth: QueueDepth, now_ms: int) -> float:
    age = depth.oldest_age_s(now_ms)
    return 0.0 if age is None else age
