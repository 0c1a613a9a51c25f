"""Helpers of the bus tests: bounded waiting, a real Dramatiq worker, real dead letters."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker

from contracts import CONTRACTS
from infra.bus.broker import SwitchboardBroker, build_broker
from infra.bus.dead_letters import DeadLetters
from infra.bus.failures import FailureRecord, FailureRecorder, failures_key
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import dead_key, dead_messages_key
from infra.settings import BrokerSettings


def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> float:
    """Poll ``predicate`` until it holds; return the seconds waited (fail on timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"condition not met within {timeout_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


@contextmanager
def running_worker(broker: SwitchboardBroker, *, threads: int = 2) -> Iterator[Worker]:
    """A real Dramatiq worker polling every 50 ms, stopped at the end of the block."""
    worker = Worker(broker, worker_timeout=50, worker_threads=threads)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=5_000)


def rejecting_broker(
    redis_url: str, namespace: str, reject: Callable[[dict[str, Any]], None]
) -> SwitchboardBroker:
    """A broker (with the failure recorder) whose every pipeline actor runs ``reject`` once.

    ``reject`` raises, so whatever is published to a pipeline queue is dead-lettered at
    once, with its failure recorded: the dead letters the on-call tools are tested on.
    """
    settings = BrokerSettings(namespace=namespace, socket_timeout_s=2)
    broker = build_broker(settings, redis_url, middleware=[FailureRecorder(namespace)])
    for route in {contract.route for contract in CONTRACTS}:
        dramatiq.actor(
            broker=broker, actor_name=route.actor, queue_name=route.queue, max_retries=0
        )(reject)
    return broker


@contextmanager
def rejecting(
    redis_url: str, prefix: str, reject: Callable[[dict[str, Any]], None]
) -> Iterator[SwitchboardBroker]:
    """A ``rejecting_broker`` in a namespace of its own, closed at the end of the block."""
    broker = rejecting_broker(redis_url, f"{prefix}-{uuid.uuid4().hex[:8]}", reject)
    try:
        yield broker
    finally:
        broker.close()


def kill(broker: SwitchboardBroker, *envelopes: Envelope) -> list[str]:
    """Publish the envelopes to a ``rejecting_broker``; return their ids once dead-lettered."""
    publisher = BrokerPublisher(broker)
    ids = [publisher.publish(envelope) for envelope in envelopes]
    letters = DeadLetters(broker.client, broker.namespace)
    with running_worker(broker):
        wait_until(lambda: all(letters.get(message_id) for message_id in ids))
    return ids


START_MS = 1_780_000_000_000
"""A time (ms) to bury dead letters at: 2026-05-28."""


def bury(
    broker: SwitchboardBroker, queue: str, scores: list[int], *, error: str = "PermanentError"
) -> list[str]:
    """Dead letters on ``queue`` dead-lettered at ``scores`` (ms), failed with ``error``.

    Written as Dramatiq's Redis broker keeps them (a ``.XQ`` zset scored by milliseconds,
    a ``.XQ.msgs`` hash) with a failure record each: thousands take a moment, not a
    worker's run. Returns their message ids.
    """
    ids = []
    pipe = broker.client.pipeline(transaction=False)
    for n, score in enumerate(scores):
        rid = str(uuid.uuid4())
        message: dramatiq.Message[object] = dramatiq.Message(
            queue_name=queue,
            actor_name=f"act_{queue}",
            args=({"n": n},),
            kwargs={},
            options={"redis_message_id": rid, "job_id": f"job-{queue}-{n}"},
        )
        record = FailureRecord(
            message_id=message.message_id,
            redis_message_id=rid,
            queue=queue,
            actor=message.actor_name,
            exception_type=error,
            exception_message=f"bad {n}",
            traceback="",
            attempts=1,
            failed_at="2026-06-01T00:00:00Z",
        )
        pipe.zadd(dead_key(broker.namespace, queue), {rid: score})
        pipe.hset(dead_messages_key(broker.namespace, queue), rid, message.encode())
        pipe.hset(failures_key(broker.namespace, queue), message.message_id, record.to_json())
        ids.append(message.message_id)
    pipe.execute()
    return ids
