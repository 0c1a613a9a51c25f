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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
    """

    ready: int
    delayed: int
    dead: int
    in_flight: int = 0


def queue_depths(
    client: redis.Redis, namespace: str, queues: Iterable[str]
) -> dict[str, QueueDepth]:
    """Depths of ``queues``, read in one round trip.

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
            counts = [int(n) for n in pipe.execute()]
    except redis.RedisError as error:
        raise TransientError(f"broker unreachable: {error}") from error
    depths: dict[str, QueueDepth] = {}
    for i, queue in enumerate(names):
        ready, unacked, delayed, dead = counts[4 * i : 4 * i + 4]
        depths[queue] = QueueDepth(
            ready=ready, delayed=delayed, dead=dead, in_flight=max(unacked - ready, 0)
        )
    return depths
