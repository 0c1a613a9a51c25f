"""A leader lease in Redis: at most one holder of a key at a time, for ``ttl_s`` seconds.

APScheduler 3 cannot share a job store between processes (FIELD-NOTES), so when more
than one scheduler runs, each tick first acquires (or renews) the lease and only the
holder fires. The lease is a key holding a random token, set with ``NX PX``; renewal
and release compare the token first (in Lua, atomically), so a holder whose lease
expired and was taken over can neither extend nor delete the new holder's key.

Errors: Redis failures are raised as ``contracts.errors.TransientError``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from contracts.errors import TransientError

_ACQUIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    """A renewable, token-guarded lease on one Redis key.

    Args:
        client: A Redis client (with socket timeouts: FIELD-NOTES).
        key: The lease key, e.g. ``switchboard:scheduler:leader``.
        ttl_s: How long the lease lasts without renewal.
        timer: Monotonic seconds (``held`` counts the TTL from before each call).
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        ttl_s: float,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl_s}")
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex
        self._client = client
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._release: Any = client.register_script(_RELEASE)
        self._owns_client = False
        self._timer = timer
        self._held_until = 0.0

    @property
    def held(self) -> bool:
        """Whether we hold the lease, as far as we know without asking Redis.

        True from an ``acquire`` that returned True until its TTL would run out (timed
        from before the call, so never later than Redis expires the key), or until
        ``release``.
        """
        return self._timer() < self._held_until

    @classmethod
    def connect(
        cls, url: str, key: str, ttl_s: float, *, socket_timeout_s: float = 5.0
    ) -> RedisLease:
        """A lease on its own client for ``url``; ``close()`` closes that client."""
        client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
        )
        lease = cls(client, key, ttl_s)
        lease._owns_client = True
        return lease

    def acquire(self) -> bool:
        """Take the lease when free, or renew it when we hold it.

        Returns:
            Whether we hold the lease now (for ``ttl_s`` from this call).

        Raises:
            TransientError: Redis could not be reached.
        """
        asked_at = self._timer()
        try:
            held = bool(self._acquire(keys=[self.key], args=[self.token, self.ttl_ms]))
        except redis.RedisError as error:
            self._held_until = 0.0
            raise TransientError(f"cannot acquire lease {self.key}: {error}") from error
        self._held_until = asked_at + self.ttl_ms / 1000 if held else 0.0
        return held

    def release(self) -> None:
        """Give the lease up if we hold it (someone else's lease is left alone).

        Raises:
            TransientError: Redis could not be reached (the lease then expires by itself).
        """
        self._held_until = 0.0
        try:
            self._release(keys=[self.key], args=[self.token])
        except redis.RedisError as error:
            raise TransientError(f"cannot release lease {self.key}: {error}") from error

    def close(self) -> None:
        """Close the client when this lease created it."""
        if self._owns_client:
            self._client.close()
