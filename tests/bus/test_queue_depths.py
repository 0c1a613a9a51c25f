from __future__ import annotations

import time
from collections.abc import Callable

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from redis.backoff import NoBackoff
from redis.retry import Retry

from contracts.errors import TransientError
from infra.bus.broker import SwitchboardBroker
from infra.bus.queues import QueueDepth, queue_depths


def _message(queue: str) -> dramatiq.Message[object]:
    return dramatiq.Message(queue_name=queue, actor_name="a", args=({},), kwargs={}, options={})


def test_queue_depths_count_ready_delayed_dead_and_in_flight_messages(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = make_broker()
    broker.declare_queue("q.a")
    sent = [broker.enqueue(_message("q.a")) for _ in range(4)]
    broker.enqueue(_message("q.a"), delay=60_000)
    consumer = broker.consume("q.a", prefetch=2, timeout=50)
    deadline = time.monotonic() + 5
    taken: list[MessageProxy] = []
    while len(taken) < 2:
        assert time.monotonic() < deadline
        message = next(consumer)
        if message is not None:
            taken.append(message)
    consumer.nack(taken[0])  # dead-lettered; taken[1] stays in flight

    depths = queue_depths(broker.client, broker.namespace, ["q.a", "q.empty"])

    assert depths == {
        # The two fetched were the first two: the third is the oldest still waiting.
        "q.a": QueueDepth(
            ready=2, delayed=1, dead=1, in_flight=1, oldest_ready_ms=sent[2].message_timestamp
        ),
        "q.empty": QueueDepth(ready=0, delayed=0, dead=0, in_flight=0),
    }
    assert depths["q.empty"].oldest_age_s(now_ms=sent[2].message_timestamp) is None
    assert depths["q.a"].oldest_age_s(now_ms=sent[2].message_timestamp + 1500) == 1.5


def test_a_retried_message_waits_from_its_eta_not_from_its_first_enqueue(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = make_broker()
    broker.declare_queue("q.r")
    # What the worker enqueues when a retry's delay is over: the first message's
    # timestamp, and the eta it waited for.
    first = int(time.time() * 1000) - 3_600_000
    message = _message("q.r").copy(message_timestamp=first, options={"eta": first + 60_000})
    broker.enqueue(message)

    [depth] = queue_depths(broker.client, broker.namespace, ["q.r"]).values()

    assert depth.oldest_ready_ms == first + 60_000


def test_queue_depths_of_an_unreachable_broker_raise_a_transient_error() -> None:
    # No retries: the refused connection should fail the call at once.
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        with pytest.raises(TransientError):
            queue_depths(client, "ns", ["q"])
    finally:
        client.close()
