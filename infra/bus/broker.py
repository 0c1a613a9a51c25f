"""The Redis broker factory: one place decides how every process talks to the bus.

Dramatiq's own defaults are wrong for us in three ways (FIELD-NOTES): its Redis client
has no socket timeouts (a blackholed connection blocks forever), a dead worker's
messages wait 60 s plus luck for maintenance, and dead letters vanish after 7 days.
``build_broker`` fixes all three from ``BrokerSettings``.

Middleware order matters: Dramatiq calls ``after_*`` hooks in *reverse* list order, so
the extra middleware given to ``build_broker`` is placed just before ``Retries``; their
``after_process_message`` hooks then run after ``Retries`` has decided whether the
message is retried or dead (``message.failed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from redis.typing import EncodableT, FieldT

from contracts.errors import TransientError
from infra.bus.queues import messages_key, ready_key
from infra.settings import BrokerSettings

HEALTH_CHECK_INTERVAL_S = 15
"""Idle pooled connections are pinged after this long, so a dead one is replaced."""


class SwitchboardBroker(RedisBroker):
    """Dramatiq's ``RedisBroker`` with a typed constructor and a ``close`` that frees the pool.

    Args:
        client: The Redis client (see ``redis_client``); the broker owns it.
        middleware: The full middleware list.
        namespace: Prefix of every key.
        heartbeat_timeout_ms: A worker silent this long is dead.
        dead_message_ttl_ms: How long dead letters are kept.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        middleware: list[Middleware],
        namespace: str,
        heartbeat_timeout_ms: int,
        dead_message_ttl_ms: int,
    ) -> None:
        # RedisBroker.__init__ carries no annotations.
        super().__init__(  # type: ignore[no-untyped-call]
            client=client,
            middleware=middleware,
            namespace=namespace,
            heartbeat_timeout=heartbeat_timeout_ms,
            dead_message_ttl=dead_message_ttl_ms,
        )

    def enqueue_many(self, messages: Sequence[dramatiq.Message[Any]]) -> list[str]:
        """Enqueue messages in one round trip, with what ``enqueue`` writes one by one.

        Dramatiq enqueues a message with one call of its dispatch script, whose
        ``enqueue`` command writes the payload into ``<ns>:<queue>.msgs`` and pushes the
        id onto ``<ns>:<queue>`` (``dramatiq/brokers/redis/dispatch.lua``, 2.2): a
        fan-out of 10,000 messages cost 10,000 script calls. This writes the same keys
        for every message of a queue with one ``HSET`` and one ``RPUSH`` in a
        ``MULTI``, so a consumer never sees an id without its payload, and runs the
        same ``before_enqueue``/``after_enqueue`` middleware hooks.

        Returns:
            The messages' ids, in order.
        """
        sent = []
        by_queue: dict[str, dict[FieldT, EncodableT]] = {}
        for message in messages:
            self.declare_queue(message.queue_name)
            redis_id = str(uuid.uuid4())
            copy = message.copy(options={"redis_message_id": redis_id})
            self.emit_before("enqueue", copy, None)
            by_queue.setdefault(copy.queue_name, {})[redis_id] = copy.encode()
            sent.append(copy)
        with self.client.pipeline(transaction=True) as pipe:
            for queue, payloads in by_queue.items():
                pipe.hset(messages_key(self.namespace, queue), mapping=payloads)
                pipe.rpush(ready_key(self.namespace, queue), *payloads)
            pipe.execute()
        for copy in sent:
            self.emit_after("enqueue", copy, None)
        return [copy.message_id for copy in sent]

    def close(self) -> None:
        """Close the client and disconnect every pooled connection."""
        client: redis.Redis = self.client
        client.close()
        client.connection_pool.disconnect()


def redis_client(settings: BrokerSettings, url: str) -> redis.Redis:
    """A Redis client with bounded socket timeouts and connection health checks.

    Args:
        settings: The bus settings (``socket_timeout_s``).
        url: A ``redis://`` URL.
    """
    pool = redis.ConnectionPool.from_url(
        url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )
    return redis.Redis(connection_pool=pool)


def middleware_stack(extra: Sequence[Middleware] = ()) -> list[Middleware]:
    """Dramatiq's default middleware plus ``CurrentMessage``, with ``extra`` before ``Retries``.

    Args:
        extra: Middleware whose ``after_*`` hooks must see Retries' decision
            (e.g. the failure recorder), or that only needs to be present.
    """
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        *extra,
        Retries(),
        CurrentMessage(),
    ]


def build_broker(
    settings: BrokerSettings, url: str, *, middleware: Sequence[Middleware] = ()
) -> SwitchboardBroker:
    """Build the bus's broker; it does no I/O until it is used.

    Args:
        settings: Namespace, heartbeat timeout, dead-letter TTL and socket timeouts.
        url: The Redis URL (see ``infra.embedded.resolve_broker_url``).
        middleware: Extra middleware, placed before ``Retries`` (see the module doc).

    Returns:
        A broker whose keys all start with ``settings.namespace``.
    """
    return SwitchboardBroker(
        client=redis_client(settings, url),
        middleware=middleware_stack(middleware),
        namespace=settings.namespace,
        heartbeat_timeout_ms=settings.heartbeat_timeout_ms,
        dead_message_ttl_ms=settings.dead_message_ttl_ms,
    )


class BrokerProbe:
    """Pings the broker on a client of its own with a short timeout (for readiness).

    Args:
        url: The broker's Redis URL.
        timeout_s: Socket timeouts of the probe's client.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    @property
    def client(self) -> redis.Redis:
        """The probe's short-timeout client (for other quick reads, e.g. queue depths)."""
        return self._client

    def __call__(self) -> None:
        """Return when the broker answers PING.

        Raises:
            TransientError: It does not.
        """
        try:
            self._client.ping()
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error

    def close(self) -> None:
        """Close the probe's connections."""
        self._client.close()
