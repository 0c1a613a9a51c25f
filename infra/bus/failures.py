"""Why a message failed: the failure recorder middleware.

Dramatiq's dead-letter queue keeps only a message's payload. ``FailureRecorder`` keeps
the reason beside it: when a message is dead-lettered it writes a JSON record to the
hash ``<namespace>:<queue>.XQ.failures`` (field: the message id) with the exception,
its traceback, the attempt count and the contract options. A sorted set
``<namespace>:<queue>.XQ.failures.at`` (scored by write time) lets each write prune the
records older than the broker's ``dead_message_ttl``, as Dramatiq prunes the payloads.

It also reports every failure, retried or dead, to an ``on_failure`` hook (the worker
root records it as job progress).

Placement: the recorder's ``after_process_message`` must run after ``Retries`` has
decided (``message.failed``); ``infra.bus.broker.build_broker`` arranges that.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware

TRACEBACK_LIMIT_BYTES = 16 * 1024
"""Tracebacks longer than this keep their last 16 KiB (the innermost frames)."""

TRUNCATION_MARK = "...[truncated]\n"

RECORDED_OPTIONS = ("contract", "correlation_id", "job_id", "tenant_id")
"""Message options copied into a failure record."""

OnFailure = Callable[[MessageProxy, BaseException, bool], None]
"""``on_failure(message, exception, dead)``; ``dead`` is True when no retry follows."""


def failures_key(namespace: str, queue_name: str) -> str:
    """The hash of failure records of a queue's dead letters."""
    return f"{namespace}:{queue_name}.XQ.failures"


def failures_index_key(namespace: str, queue_name: str) -> str:
    """The sorted set of failure record ids scored by when they were written (ms)."""
    return f"{namespace}:{queue_name}.XQ.failures.at"


@dataclass(frozen=True)
class FailureRecord:
    """Why a dead-lettered message failed.

    Attributes:
        message_id: Dramatiq's message id (stable across retries).
        redis_message_id: The id of its last enqueue: the member of the ``.XQ`` zset.
        queue: The queue it failed on.
        actor: The actor that raised.
        exception_type: The exception's class name.
        exception_message: ``str(exception)``.
        traceback: The formatted traceback, at most 16 KiB.
        attempts: How many times the message was processed (retries + 1).
        failed_at: ISO 8601 UTC time of the last failure.
        options: The contract options of the message (contract, correlation_id, ...).
    """

    message_id: str
    redis_message_id: str | None
    queue: str
    actor: str
    exception_type: str
    exception_message: str
    traceback: str
    attempts: int
    failed_at: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The record as stored in Redis."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> FailureRecord:
        """Parse a stored record."""
        return cls(**json.loads(raw))


def format_traceback(exception: BaseException) -> str:
    """The exception's formatted traceback, keeping the last ``TRACEBACK_LIMIT_BYTES``."""
    text = "".join(traceback.format_exception(exception))
    encoded = text.encode("utf-8")
    if len(encoded) <= TRACEBACK_LIMIT_BYTES:
        return text
    keep = TRACEBACK_LIMIT_BYTES - len(TRUNCATION_MARK)
    return TRUNCATION_MARK + encoded[-keep:].decode("utf-8", errors="ignore")


class FailureRecorder(Middleware):
    """Records why dead-lettered messages failed and reports every failure.

    Args:
        namespace: The broker's key namespace.
        client: A Redis client; None writes with the broker's own client.
        on_failure: Called after every failed attempt with ``dead`` saying whether the
            message was dead-lettered. Its exceptions are not caught here.
    """

    def __init__(
        self,
        namespace: str,
        client: redis.Redis | None = None,
        on_failure: OnFailure | None = None,
    ) -> None:
        self.namespace = namespace
        self.client = client
        self.on_failure = on_failure
        # Attempt numbers noted before processing: after a failure Retries has already
        # bumped the count, except for `throws` exceptions, so it cannot be derived then.
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:  # noqa: ARG002
        """Note which attempt this is."""
        with self._lock:
            self._attempts[message.message_id] = int(message.options.get("retries", 0)) + 1

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:  # noqa: ARG002
        """Forget the noted attempt of a skipped message."""
        self._take_attempt(message)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,  # noqa: ARG002 (dramatiq passes it)
        exception: BaseException | None = None,
    ) -> None:
        """Record a dead message's failure, then report the failure to ``on_failure``.

        Raises:
            redis.RedisError: The record could not be written.
        """
        attempt = self._take_attempt(message)
        if exception is None:
            return
        dead = bool(message.failed)
        if dead:
            ttl_ms = int(getattr(broker, "dead_message_ttl", 0)) or None
            client: redis.Redis = self.client or getattr(broker, "client")  # noqa: B009
            record = self.build_record(message, exception, attempt)
            self.record(record, ttl_ms=ttl_ms, client=client)
        if self.on_failure is not None:
            self.on_failure(message, exception, dead)

    def build_record(
        self, message: MessageProxy, exception: BaseException, attempts: int
    ) -> FailureRecord:
        """The failure record of a message that failed with ``exception``."""
        options = message.options
        return FailureRecord(
            message_id=message.message_id,
            redis_message_id=options.get("redis_message_id"),
            queue=message.queue_name,
            actor=message.actor_name,
            exception_type=type(exception).__name__,
            exception_message=str(exception),
            traceback=format_traceback(exception),
            attempts=attempts,
            failed_at=datetime.now(UTC).isoformat(),
            options={k: options[k] for k in RECORDED_OPTIONS if k in options},
        )

    def record(
        self, record: FailureRecord, *, ttl_ms: int | None, client: redis.Redis | None = None
    ) -> None:
        """Store ``record`` and prune the queue's records older than ``ttl_ms``.

        Raises:
            redis.RedisError: Redis could not be reached.
        """
        client = client or self.client
        if client is None:
            raise ValueError("FailureRecorder.record needs a Redis client")
        now_ms = int(time.time() * 1000)
        hash_key = failures_key(self.namespace, record.queue)
        index_key = failures_index_key(self.namespace, record.queue)
        expired: list[Any] = []
        if ttl_ms is not None:
            expired = list(client.zrangebyscore(index_key, 0, now_ms - ttl_ms))
        with client.pipeline(transaction=True) as pipe:
            if expired:
                pipe.hdel(hash_key, *expired)
                pipe.zrem(index_key, *expired)
            pipe.hset(hash_key, record.message_id, record.to_json())
            pipe.zadd(index_key, {record.message_id: now_ms})
            pipe.execute()

    def _take_attempt(self, message: MessageProxy) -> int:
        with self._lock:
            noted = self._attempts.pop(message.message_id, None)
        if noted is not None:
            return noted
        return int(message.options.get("retries", 0)) + 1
