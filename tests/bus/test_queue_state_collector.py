"""The scheduler's collector: the queues in Redis and the relay's backlog, read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import dramatiq
import pytest
import redis
from prometheus_client import CollectorRegistry
from redis.backoff import NoBackoff
from redis.retry import Retry

from contracts.errors import TransientError
from infra.bus.broker import SwitchboardBroker
from infra.metrics.queue_state import QueueStateCollector
from infra.store.records import RelayBacklog

pytestmark = pytest.mark.redis

PIPELINES = {"post_call": ("calls.transcript", "calls.analyze"), "daily_calls": ("daily.tick",)}
NOW_S = 1_800_000_000.0


class Backlog:
    """A relay backlog set by the test."""

    def __init__(self, backlog: RelayBacklog | None = None) -> None:
        self.backlog = backlog or RelayBacklog(jobs=0, oldest_accepted_at=None)

    def relay_backlog(self) -> RelayBacklog:
        return self.backlog


class DownBacklog:
    def relay_backlog(self) -> RelayBacklog:
        raise TransientError("database unavailable")


def _message(queue: str, timestamp_ms: int) -> dramatiq.Message[object]:
    return dramatiq.Message(
        queue_name=queue,
        actor_name="a",
        args=({},),
        kwargs={},
        options={},
        message_timestamp=timestamp_ms,
    )


def registry_of(collector: QueueStateCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_each_queue_and_the_relay_backlog_are_read_at_every_scrape(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = make_broker()
    for queue in ("calls.transcript", "calls.analyze"):
        broker.declare_queue(queue)
    now_ms = int(NOW_S * 1000)
    broker.enqueue(_message("calls.analyze", now_ms - 90_000))
    broker.enqueue(_message("calls.analyze", now_ms - 30_000))
    broker.enqueue(_message("calls.transcript", now_ms), delay=60_000)
    backlog = Backlog(
        RelayBacklog(jobs=3, oldest_accepted_at=datetime.fromtimestamp(NOW_S - 42, UTC))
    )
    registry = registry_of(
        QueueStateCollector(
            broker.client,
            broker.namespace,
            PIPELINES,
            backlog,
            leading=lambda: True,
            clock=lambda: NOW_S,
        )
    )

    analyze = {"queue": "calls.analyze", "pipeline": "post_call"}
    assert value(registry, "switchboard_queue_ready_messages", **analyze) == 2
    assert value(registry, "switchboard_queue_oldest_ready_age_seconds", **analyze) == 90
    transcript = {"queue": "calls.transcript", "pipeline": "post_call"}
    assert value(registry, "switchboard_queue_delayed_messages", **transcript) == 1
    assert value(registry, "switchboard_queue_ready_messages", **transcript) == 0
    assert value(registry, "switchboard_queue_oldest_ready_age_seconds", **transcript) == 0
    tick = {"queue": "daily.tick", "pipeline": "daily_calls"}
    assert value(registry, "switchboard_queue_in_flight_messages", **tick) == 0
    assert value(registry, "switchboard_queue_dead_lettered_messages", **tick) == 0
    assert value(registry, "switchboard_inbox_pending_jobs") == 3
    assert value(registry, "switchboard_inbox_oldest_pending_age_seconds") == 42
    assert value(registry, "switchboard_queue_state_up") == 1
    assert value(registry, "switchboard_inbox_state_up") == 1
    assert value(registry, "switchboard_scheduler_leader") == 1

    # The next scrape reads again.
    broker.client.delete(f"{broker.namespace}:calls.analyze")
    backlog.backlog = RelayBacklog(jobs=0, oldest_accepted_at=None)
    assert value(registry, "switchboard_queue_ready_messages", **analyze) == 0
    assert value(registry, "switchboard_inbox_oldest_pending_age_seconds") == 0


def test_a_scheduler_that_does_not_lead_exports_only_that_it_does_not(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = make_broker()
    leading = False
    registry = registry_of(
        QueueStateCollector(
            broker.client, broker.namespace, PIPELINES, Backlog(), leading=lambda: leading
        )
    )

    names = {sample.name for family in registry.collect() for sample in family.samples}
    assert names == {"switchboard_scheduler_leader"}
    assert value(registry, "switchboard_scheduler_leader") == 0
    leading = True
    assert value(registry, "switchboard_inbox_pending_jobs") == 0


def test_a_state_that_cannot_be_read_is_left_out_and_said_to_be_down() -> None:
    # Nothing listens on port 1: refused at once, no retries.
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        registry = registry_of(
            QueueStateCollector(client, "ns", PIPELINES, DownBacklog(), leading=lambda: True)
        )
        started = time.monotonic()
        names = {sample.name for family in registry.collect() for sample in family.samples}
        assert time.monotonic() - started < 2
    finally:
        client.close()

    assert names == {
        "switchboard_scheduler_leader",
        "switchboard_queue_state_up",
        "switchboard_inbox_state_up",
    }
    assert value(registry, "switchboard_queue_state_up") == 0
    assert value(registry, "switchboard_inbox_state_up") == 0


def test_describe_names_every_family_without_reading_anything() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    collector = QueueStateCollector(client, "ns", PIPELINES, DownBacklog(), leading=lambda: True)

    described = {family.name for family in collector.describe()}

    client.close()
    assert "switchboard_queue_oldest_ready_age_seconds" in described
    assert "switchboard_inbox_pending_jobs" in described
    assert "switchboard_scheduler_leader" in described
