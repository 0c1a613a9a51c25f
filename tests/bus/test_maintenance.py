from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker

from infra.bus.broker import SwitchboardBroker
from infra.bus.maintenance import QueueMaintenance, force_maintenance
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import ready_key
from tests.bus.support import running_worker, wait_until

QUEUE = "tests.maintained"


def _take_without_ack(broker: SwitchboardBroker) -> None:
    """Fetch one message as a worker would, then 'die': never ack, never heartbeat."""
    consumer = broker.consume(QUEUE, prefetch=1, timeout=50)
    deadline = time.monotonic() + 5
    while next(consumer) is None:
        assert time.monotonic() < deadline, "the message never arrived"


def _publish(broker: SwitchboardBroker) -> None:
    envelope = Envelope(queue=QUEUE, actor="work", payload={"n": 1}, options={})
    BrokerPublisher(broker).publish(envelope)


def test_forced_maintenance_requeues_a_dead_workers_message_only_after_the_heartbeat_timeout(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    dying, survivor = make_broker(), make_broker()
    survivor.declare_queue(QUEUE)
    _publish(dying)
    _take_without_ack(dying)
    ready = ready_key(survivor.namespace, QUEUE)

    force_maintenance(survivor, QUEUE)
    assert survivor.client.llen(ready) == 0  # the dying broker still counts as alive

    time.sleep(1.2)  # past the 1 s heartbeat timeout
    force_maintenance(survivor, QUEUE)
    assert survivor.client.llen(ready) == 1


def test_a_message_held_by_a_dead_worker_is_processed_by_another_worker_within_the_bound(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    dying = make_broker()
    _publish(dying)
    _take_without_ack(dying)
    died_at = time.monotonic()

    survivor = make_broker(QueueMaintenance(0.3))
    survivor.maintenance_chance = 0  # only the middleware may requeue
    processed: list[dict[str, Any]] = []
    dramatiq.actor(broker=survivor, actor_name="work", queue_name=QUEUE)(processed.append)

    with running_worker(survivor):
        wait_until(lambda: processed == [{"n": 1}], timeout_s=10)
    elapsed = time.monotonic() - died_at

    # heartbeat timeout (1 s) + interval (0.3 s) + one poll (0.05 s), with slack for CI.
    assert 1.0 <= elapsed < 4.0


def test_without_forced_maintenance_a_dead_workers_message_stays_stranded(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    dying = make_broker()
    _publish(dying)
    _take_without_ack(dying)

    survivor = make_broker()
    survivor.maintenance_chance = 0
    processed: list[dict[str, Any]] = []
    dramatiq.actor(broker=survivor, actor_name="work", queue_name=QUEUE)(processed.append)

    with running_worker(survivor):
        time.sleep(2.0)

    assert processed == []


def test_an_interval_not_below_the_heartbeat_timeout_is_refused(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = make_broker()
    maintenance = QueueMaintenance(1.0)
    with pytest.raises(ValueError, match="below the heartbeat"):
        maintenance.after_worker_boot(broker, Worker(broker))
