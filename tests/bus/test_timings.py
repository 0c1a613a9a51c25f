"""Each message's queue wait and run time, observed per queue and actor."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from prometheus_client import CollectorRegistry

from infra.bus.broker import SwitchboardBroker
from infra.bus.timings import MessageTimings
from infra.metrics.work import WorkMetrics
from tests.bus.support import running_worker, wait_until

LABELS = {"queue": "calls.analyze", "actor": "analyze_call"}
BROKER = StubBroker(middleware=[])
"""The hooks' broker argument (MessageTimings does not use it)."""


class Clocks:
    """A wall clock and a monotonic timer a test moves by hand."""

    def __init__(self, wall_s: float) -> None:
        self.wall_s = wall_s
        self.monotonic_s = 100.0

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.monotonic_s += seconds


def proxy(timestamp_ms: int, **options: Any) -> MessageProxy:
    message: dramatiq.Message[object] = dramatiq.Message(
        queue_name="calls.analyze",
        actor_name="analyze_call",
        args=({},),
        kwargs={},
        options=options,
        message_timestamp=timestamp_ms,
    )
    return MessageProxy(message)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels or LABELS) or 0.0


def test_the_wait_runs_from_the_enqueue_and_the_run_from_the_start_to_the_end() -> None:
    registry = CollectorRegistry()
    clocks = Clocks(wall_s=1_000.0)
    timings = MessageTimings(
        WorkMetrics(registry), clock=lambda: clocks.wall_s, timer=lambda: clocks.monotonic_s
    )
    message = proxy(timestamp_ms=997_500)  # enqueued 2.5 s ago

    timings.before_process_message(BROKER, message)
    clocks.advance(0.75)
    timings.after_process_message(BROKER, message, exception=RuntimeError("failed"))

    assert sample(registry, "switchboard_message_queue_wait_seconds_sum") == 2.5
    assert sample(registry, "switchboard_message_run_seconds_sum") == 0.75
    assert sample(registry, "switchboard_message_run_seconds_count") == 1


def test_a_retry_waits_from_its_eta_and_a_clock_behind_the_enqueuer_waits_zero() -> None:
    registry = CollectorRegistry()
    clocks = Clocks(wall_s=1_000_000.0)
    timings = MessageTimings(WorkMetrics(registry), clock=lambda: clocks.wall_s)
    # First enqueued an hour ago; its retry became ready 4 s ago.
    retry = proxy(timestamp_ms=996_400_000, eta=999_996_000, retries=1)
    ahead = proxy(timestamp_ms=1_000_003_000)  # the enqueuer's clock is 3 s ahead of ours

    timings.before_process_message(BROKER, retry)
    timings.before_process_message(BROKER, ahead)

    assert sample(registry, "switchboard_message_queue_wait_seconds_sum") == 4.0
    assert sample(registry, "switchboard_message_queue_wait_seconds_count") == 2


def test_a_skipped_message_is_not_timed_as_a_run() -> None:
    registry = CollectorRegistry()
    timings = MessageTimings(WorkMetrics(registry))
    message = proxy(timestamp_ms=int(time.time() * 1000))

    timings.before_process_message(BROKER, message)
    timings.after_skip_message(BROKER, message)
    timings.after_process_message(BROKER, message)

    assert sample(registry, "switchboard_message_run_seconds_count") == 0


@pytest.mark.redis
def test_a_real_worker_times_every_message_it_runs_and_every_retry(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    registry = CollectorRegistry()
    broker = make_broker(MessageTimings(WorkMetrics(registry)))
    attempts: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="q.timed", max_retries=1, min_backoff=10)
    def flaky(payload: dict[str, Any]) -> None:
        attempts.append(1)
        time.sleep(0.05)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")

    with running_worker(broker):
        flaky.send({})
        labels = {"queue": "q.timed", "actor": "flaky"}
        wait_until(lambda: sample(registry, "switchboard_message_run_seconds_count", **labels) == 2)

    assert sample(registry, "switchboard_message_queue_wait_seconds_count", **labels) == 2
    assert sample(registry, "switchboard_message_run_seconds_sum", **labels) >= 0.1
