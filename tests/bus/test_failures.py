from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq
import pytest
import redis

from contracts.errors import PermanentError, TransientError
from infra.bus.broker import SwitchboardBroker
from infra.bus.failures import (
    TRACEBACK_LIMIT_BYTES,
    FailureRecord,
    FailureRecorder,
    failures_index_key,
    failures_key,
    format_traceback,
)
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import dead_key
from tests.bus.support import running_worker, wait_until

QUEUE = "tests.failing"
OPTIONS = {"contract": "PostCallJobData", "correlation_id": "c1", "job_id": "j1", "tenant_id": "t1"}


class Reports:
    """Records the recorder's on_failure calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def __call__(self, message: Any, exception: BaseException, dead: bool) -> None:
        self.calls.append((message.message_id, type(exception).__name__, dead))


def _failing_broker(
    make_broker: Callable[..., SwitchboardBroker],
    reports: Reports,
    error: Exception,
    *,
    max_retries: int,
) -> tuple[SwitchboardBroker, list[int]]:
    recorder = FailureRecorder("unused", on_failure=reports)
    broker = make_broker(recorder)
    recorder.namespace = broker.namespace
    attempts: list[int] = []

    def fail(payload: dict[str, Any]) -> None:
        attempts.append(1)
        raise error

    dramatiq.actor(
        broker=broker,
        actor_name="fail",
        queue_name=QUEUE,
        max_retries=max_retries,
        min_backoff=10,
        max_backoff=20,
        throws=(PermanentError,),
    )(fail)
    return broker, attempts


def _publish(broker: SwitchboardBroker) -> str:
    envelope = Envelope(queue=QUEUE, actor="fail", payload={"x": 1}, options=dict(OPTIONS))
    return BrokerPublisher(broker).publish(envelope)


def _record(client: redis.Redis, namespace: str, message_id: str) -> FailureRecord | None:
    raw = client.hget(failures_key(namespace, QUEUE), message_id)
    return None if raw is None else FailureRecord.from_json(raw)


def test_a_permanent_error_is_dead_lettered_at_once_with_its_failure_record(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    reports = Reports()
    broker, attempts = _failing_broker(
        make_broker, reports, PermanentError("conversation gone"), max_retries=3
    )
    message_id = _publish(broker)

    with running_worker(broker):
        wait_until(lambda: broker.client.zcard(dead_key(broker.namespace, QUEUE)) == 1)
        wait_until(lambda: len(reports.calls) == 1)

    record = _record(broker.client, broker.namespace, message_id)
    assert record is not None
    assert len(attempts) == 1
    assert record.attempts == 1
    assert record.exception_type == "PermanentError"
    assert record.exception_message == "conversation gone"
    assert "raise error" in record.traceback
    assert record.traceback.rstrip().endswith("PermanentError: conversation gone")
    assert record.queue == QUEUE
    assert record.actor == "fail"
    assert record.options == OPTIONS
    assert record.failed_at.endswith("+00:00")
    assert reports.calls == [(message_id, "PermanentError", True)]


def test_a_transient_error_is_retried_max_retries_times_then_dead_lettered(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    reports = Reports()
    broker, attempts = _failing_broker(
        make_broker, reports, TransientError("vendor 503"), max_retries=2
    )
    message_id = _publish(broker)

    with running_worker(broker):
        wait_until(lambda: broker.client.zcard(dead_key(broker.namespace, QUEUE)) == 1)
        wait_until(lambda: len(reports.calls) == 3)

    record = _record(broker.client, broker.namespace, message_id)
    assert record is not None
    assert len(attempts) == 3
    assert record.attempts == 3
    assert record.exception_type == "TransientError"
    assert reports.calls == [
        (message_id, "TransientError", False),
        (message_id, "TransientError", False),
        (message_id, "TransientError", True),
    ]


def test_a_successful_message_leaves_no_failure_record(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    reports = Reports()
    recorder = FailureRecorder("unused", on_failure=reports)
    broker = make_broker(recorder)
    recorder.namespace = broker.namespace
    done: list[int] = []
    dramatiq.actor(broker=broker, actor_name="fail", queue_name=QUEUE)(
        lambda payload: done.append(payload["x"])
    )
    _publish(broker)

    with running_worker(broker):
        wait_until(lambda: done == [1])

    assert broker.client.hlen(failures_key(broker.namespace, QUEUE)) == 0
    assert reports.calls == []


def test_writing_a_record_prunes_records_older_than_the_dead_message_ttl(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    recorder = FailureRecorder("sbtest-prune", client)
    old = FailureRecord("old", None, QUEUE, "fail", "E", "m", "tb", 1, "2020-01-01T00:00:00+00:00")
    new = FailureRecord("new", None, QUEUE, "fail", "E", "m", "tb", 1, "2026-01-01T00:00:00+00:00")
    try:
        recorder.record(old, ttl_ms=None)
        # Backdate the old record's index entry by two seconds.
        client.zadd(failures_index_key("sbtest-prune", QUEUE), {"old": time.time() * 1000 - 2000})
        recorder.record(new, ttl_ms=1_000)
        fields = set(client.hkeys(failures_key("sbtest-prune", QUEUE)))
        indexed = set(client.zrange(failures_index_key("sbtest-prune", QUEUE), 0, -1))
    finally:
        client.close()

    assert fields == {b"new"}
    assert indexed == {b"new"}


def _raise_long_error() -> None:
    raise ValueError("x" * (TRACEBACK_LIMIT_BYTES * 2) + " the end")


def test_a_long_traceback_keeps_its_last_16_kib() -> None:
    with pytest.raises(ValueError, match="the end") as caught:
        _raise_long_error()
    text = format_traceback(caught.value)

    assert len(text.encode()) <= TRACEBACK_LIMIT_BYTES
    assert text.startswith("...[truncated]")
    assert text.rstrip().endswith("the end")


def test_recording_without_any_client_is_refused() -> None:
    recorder = FailureRecorder("ns")
    record = FailureRecord("m", None, QUEUE, "a", "E", "m", "tb", 1, "2026-01-01T00:00:00+00:00")
    with pytest.raises(ValueError, match="needs a Redis client"):
        recorder.record(record, ttl_ms=1000)
