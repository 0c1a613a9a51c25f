"""Forced queue maintenance on a timer: a killed worker's messages come back in bounded time.

Dramatiq's Redis broker moves a dead worker's unacked messages back to their queue
only during "maintenance", which its Lua script runs on a random fraction of calls
(0.1 % by default) and only for the queue of that call (FIELD-NOTES: minutes). The
``QueueMaintenance`` middleware runs it on purpose, for every declared queue and its
delay queue, every ``interval_s`` on a daemon thread of each live worker.

The bound with the defaults (heartbeat timeout 30 s, interval 10 s): a worker killed at
time T sent its last heartbeat at or before T; it counts as dead from T + 30 s; the
next tick of any live worker requeues its messages by T + 40 s; a consumer polls at
least every second, so processing restarts by about T + 41 s, inside the 90 s target.
In general: ``heartbeat_timeout + interval + worker_timeout``.

Each tick also refreshes this worker's heartbeat. That matters: Dramatiq refreshes it
only when a consumer fetches, and a consumer whose prefetch is full (long jobs) does
not fetch, so without the tick a busy worker could be declared dead and its messages
run twice.

Maintenance also deletes dead letters older than the broker's ``dead_message_ttl``.
"""

from __future__ import annotations

import threading
import time

import redis
from dramatiq.broker import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from dramatiq.middleware import Middleware
from dramatiq.worker import Worker

from infra.logs import get_logger

MAINTENANCE_COMMAND = "maintenance"
"""A command the dispatch script does not know: it only heartbeats and maintains."""

MAX_UNPACK_SIZE = 1000
"""Batch size for the script's DLQ expiry: well below Lua's default stack of 8,000."""

_log = get_logger(__name__)


def force_maintenance(broker: RedisBroker, queue_name: str) -> None:
    """Run the dispatch script's maintenance for one queue now.

    Requeues the unacked messages that workers silent for longer than the broker's
    heartbeat timeout hold on ``queue_name``, and expires old dead letters. Also
    records a heartbeat for ``broker``.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    dispatch = broker.scripts["dispatch"]
    dispatch(
        keys=[broker.namespace],
        args=[
            MAINTENANCE_COMMAND,
            int(time.time() * 1000),
            queue_name,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            1,
            MAX_UNPACK_SIZE,
        ],
    )


def maintain_declared_queues(broker: RedisBroker) -> None:
    """Force maintenance on every queue the broker declared and on its delay queue.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    for queue_name in sorted(broker.get_declared_queues()):
        force_maintenance(broker, queue_name)
        force_maintenance(broker, dq_name(queue_name))


class QueueMaintenance(Middleware):
    """Runs ``maintain_declared_queues`` every ``interval_s`` while the worker runs.

    Args:
        interval_s: Seconds between runs; must be below the broker's heartbeat timeout
            (the tick is also this worker's heartbeat).
    """

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("maintenance interval must be positive")
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:  # noqa: ARG002
        """Start the maintenance thread (the worker's signature requires ``worker``)."""
        if not isinstance(broker, RedisBroker):
            raise TypeError("QueueMaintenance needs a Redis broker")
        if self.interval_s * 1000 >= broker.heartbeat_timeout:
            raise ValueError(
                f"maintenance interval {self.interval_s}s must be below the heartbeat "
                f"timeout {broker.heartbeat_timeout}ms, or live workers look dead"
            )
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="queue-maintenance", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:  # noqa: ARG002
        """Stop the maintenance thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10)
            self._thread = None

    def _run(self, broker: RedisBroker) -> None:
        while True:
            try:
                maintain_declared_queues(broker)
            except redis.RedisError as error:
                # A Redis blip must not end maintenance for the worker's lifetime: the
                # next tick retries, and the consumers report the outage themselves.
                _log.warning("queue maintenance failed; retrying next tick", error=repr(error))
            if self._stop.wait(self.interval_s):
                return
