from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import pytest

from contracts.errors import TransientError
from infra.bus.broker import BrokerProbe, SwitchboardBroker
from infra.bus.publisher import BATCH, connect_publisher
from infra.bus.publishing import Envelope
from infra.bus.queues import queue_depths
from infra.settings import BrokerSettings
from tests.bus.support import running_worker, wait_until


def test_a_message_published_by_name_is_consumed_by_the_actor_of_that_name(
    make_broker: Callable[..., SwitchboardBroker], bus_settings: BrokerSettings, redis_url: str
) -> None:
    received: list[tuple[dict[str, Any], dict[str, Any]]] = []
    consumer = make_broker()

    def echo(payload: dict[str, Any]) -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        assert message is not None
        received.append((payload, message.options))

    dramatiq.actor(broker=consumer, actor_name="echo", queue_name="tests.echo")(echo)
    publisher = connect_publisher(bus_settings, redis_url)
    envelope = Envelope(
        queue="tests.echo",
        actor="echo",
        payload={"conversation_id": "c1"},
        options={"correlation_id": "c1", "job_id": "j1"},
    )
    try:
        message_id = publisher.publish(envelope)
        with running_worker(consumer):
            wait_until(lambda: len(received) == 1)
    finally:
        publisher.close()

    payload, options = received[0]
    assert payload == {"conversation_id": "c1"}
    assert options["correlation_id"] == "c1"
    assert options["job_id"] == "j1"
    assert message_id


def test_publishing_to_an_unreachable_broker_raises_a_transient_error() -> None:
    settings = BrokerSettings(namespace="sbtest-down", socket_timeout_s=0.5)
    publisher = connect_publisher(settings, "redis://127.0.0.1:1/0")
    envelope = Envelope(queue="tests.echo", actor="echo", payload={}, options={})
    try:
        with pytest.raises(TransientError):
            publisher.publish(envelope)
    finally:
        publisher.close()


def test_the_broker_probe_answers_for_a_reachable_broker_and_raises_for_a_refusing_one(
    redis_url: str,
) -> None:
    BrokerProbe(redis_url, timeout_s=1)()
    with pytest.raises(TransientError, match="broker unreachable"):
        BrokerProbe("redis://127.0.0.1:1/0", timeout_s=0.5)()


def test_a_fan_out_published_in_batches_is_consumed_whole_and_in_order(
    make_broker: Callable[..., SwitchboardBroker], bus_settings: BrokerSettings, redis_url: str
) -> None:
    received: list[int] = []
    consumer = make_broker()

    def collect(payload: dict[str, Any]) -> None:
        received.append(payload["n"])

    dramatiq.actor(broker=consumer, actor_name="collect", queue_name="tests.fan_out")(collect)
    publisher = connect_publisher(bus_settings, redis_url)
    total = BATCH * 2 + 17  # three round trips, the last one partial
    envelopes = [
        Envelope(queue="tests.fan_out", actor="collect", payload={"n": n}, options={"job_id": "j"})
        for n in range(total)
    ]
    try:
        ids = publisher.publish_many(envelopes)
        depth = queue_depths(publisher.broker.client, bus_settings.namespace, ["tests.fan_out"])
        assert depth["tests.fan_out"].ready == total
        with running_worker(consumer):
            wait_until(lambda: len(received) == total, timeout_s=30)
    finally:
        publisher.close()

    assert len(set(ids)) == total
    assert sorted(received) == list(range(total))


def test_a_fan_out_to_an_unreachable_broker_raises_a_transient_error() -> None:
    settings = BrokerSettings(namespace="sbtest-down", socket_timeout_s=0.5)
    publisher = connect_publisher(settings, "redis://127.0.0.1:1/0")
    envelopes = [Envelope(queue="tests.echo", actor="echo", payload={}, options={})] * 3
    try:
        with pytest.raises(TransientError, match="3 of 3 messages not published"):
            publisher.publish_many(envelopes)
    finally:
        publisher.close()
