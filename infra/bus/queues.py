"""Queue depths read from Dramatiq's Redis key layout.

The layout (``dramatiq/brokers/redis/dispatch.lua``) for a queue ``q`` in namespace
``ns``::

    ns:q            list  ids of ready messages, not yet fetched
    ns:q.msgs       hash  id -> payload of every message not acked (ready or in flight)
    ns:q.DQ.msgs    hash  id -> payload of delayed messages (retries, ``delay=``)
    ns:q.XQ         zset  dead-lettered ids, scored by when (ms)
    ns:q.XQ.msgs    hash  id -> payload of dead letters

Delayed messages are counted from the hash, not the ``ns:q.DQ`` list: workers prefetch
delayed messages into memory until their eta (FIELD-NOTES), which empties the list but
not the hash.

The oldest ready message is the head of ``ns:q`` (enqueue pushes on the right, fetch
takes from the left). It became ready at its ``eta`` if it was delayed (a retry), else
when it was enqueued (``message_timestamp``), both in ms (``ready_since_ms``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from contracts.errors import TransientError


def ready_key(namespace: str, queue: str) -> str:
    """The list of ready message ids."""
    return f"{namespace}:{queue}"


def messages_key(namespace: str, queue: str) -> str:
    """The hash of unacked payloads (ready or in flight)."""
    return f"{namespace}:{queue}.msgs"


def delayed_messages_key(namespace: str, queue: str) -> str:
    """The hash of delayed payloads."""
    return f"{namespace}:{queue}.DQ.msgs"


def dead_key(namespace: str, queue: str) -> str:
    """The sorted set of dead-lettered ids, scored by time in ms."""
    return f"{namespace}:{queue}.XQ"


def dead_messages_key(namespace: str, queue: str) -> str:
    """The hash of dead-lettered payloads."""
    return f"{namespace}:{queue}.XQ.msgs"


@dataclass(frozen=True)
class QueueDepth:
    """How many messages a queue holds, by state.

    Attributes:
        ready: Waiting to be fetched.
        delayed: Waiting for their eta (retry backoff or ``delay=``).
        dead: In the dead-letter queue.
        in_flight: Fetched by a worker and not yet acked.
        oldest_ready_ms: When the oldest ready message became ready (unix ms), or
            None when nothing is ready.
    """

    ready: int
    delayed: int
    dead: int
    in_flight: int = 0
    oldest_ready_ms: int | None = None

    def oldest_age_s(self, now_ms: int) -> float | None:
        """How long the oldest ready message has waited, in seconds (None: none waits)."""
        if self.oldest_ready_ms is None:
            return None
        return max(now_ms - self.oldest_ready_ms, 0) / 1000


def queue_depths(
    client: redis.Redis, namespace: str, queues: Iterable[str]
) -> dict[str, QueueDepth]:
    """Depths of ``queues`` and their oldest ready message, read in two round trips.

    Raises:
        TransientError: Redis could not be reached.
    """
    names = list(queues)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in names:
                pipe.llen(ready_key(namespace, queue))
                pipe.hlen(messages_key(namespace, queue))
                pipe.hlen(delayed_messages_key(namespace, queue))
                pipe.zcard(dead_key(namespace, queue))
                pipe.lindex(ready_key(namespace, queue), 0)
            replies = pipe.execute()
        heads = {q: replies[5 * i + 4] for i, q in enumerate(names) if replies[5 * i + 4]}
        with client.pipeline(transaction=False) as pipe:
            for queue, head in heads.items():
                pipe.hget(messages_key(namespace, queue), head)
            oldest = dict(zip(heads, (_ready_since(raw) for raw in pipe.execute()), strict=True))
    except redis.RedisError as error:
        raise TransientError(f"broker unreachable: {error}") from error
    depths: dict[str, QueueDepth] = {}
    for i, queue in enumerate(names):
        ready, unacked, delayed, dead = (int(n) for n in replies[5 * i : 5 * i + 4])
        depths[queue] = QueueDepth(
            ready=ready,
            delayed=delayed,
            dead=dead,
            in_flight=max(unacked - ready, 0),
            oldest_ready_ms=oldest.get(queue),
        )
    return depths


def ready_since_ms(message_timestamp: int, options: Mapping[str, Any]) -> int:
    """When a message became ready (unix ms): its eta if it had one, else its enqueue.

    A retry or a deferred copy keeps its first ``message_timestamp`` and waits for its
    ``eta``; it has been ready since then, not since the first enqueue.

    Raises:
        ValueError, TypeError: The eta is not a number.
    """
    return int(options.get("eta") or message_timestamp)


def _ready_since(raw: bytes | str | None) -> int | None:
    """When a stored message became ready (ms), from its payload."""
    if raw is None:  # fetched between the two round trips
        return None
    try:
        message = json.loads(raw)
        return ready_since_ms(message["message_timestamp"], message.get("options") or {})
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # not Dramatiq's JSON: no age rather than a failed report
