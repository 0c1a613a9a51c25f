"""A distributed throttle for steps that call a rate-limited vendor.

``Throttle.slot()`` waits until both a concurrency slot and a token of a one-second
sliding window are free, across every worker process sharing the Redis. Both are taken
atomically by one Lua script that reads the server's clock (so hosts' clocks do not
matter):

- ``<key>:slots`` is a sorted set of holders scored by lease expiry; a holder that
  died without releasing stops counting when its lease ends (Dramatiq's
  ``ConcurrentRateLimiter`` keeps a crashed holder's count for 15 minutes);
- ``<key>:window`` is a sorted set of tokens scored by when they were taken; tokens
  older than one second are dropped.

Waiting sleeps with jittered backoff and is bounded: after ``wait_timeout_s`` the
block runs holding nothing and is told so (``slot()`` yields False); the actor shell
then defers the message (``infra.bus.deferral``) without spending one of its retries.

One throttle per vendor (``openai``, ``pinecone``…), shared by every step that calls
it and by every worker process on the bus; ``Throttles`` holds several at once for a
step that calls more than one vendor.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import redis

from contracts.errors import TransientError

_ACQUIRE = """
local slots, window = KEYS[1], KEYS[2]
local concurrency, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local lease_ms, token = tonumber(ARGV[3]), ARGV[4]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", slots, "-inf", now)
redis.call("ZREMRANGEBYSCORE", window, "-inf", now - 1000)
if redis.call("ZCARD", slots) >= concurrency then return 0 end
if redis.call("ZCARD", window) >= rate then return 0 end
redis.call("ZADD", slots, now + lease_ms, token)
redis.call("ZADD", window, now, token)
redis.call("PEXPIRE", slots, lease_ms)
redis.call("PEXPIRE", window, 2000)
return 1
"""

MIN_SLEEP_S = 0.01
MAX_SLEEP_S = 0.25


class Throttle:
    """Concurrency and rate limit shared by every worker on one Redis key.

    Args:
        client: A Redis client.
        key: The throttle's key prefix, e.g. ``switchboard:throttle:analyze_call``.
        concurrency: Slots held at once, at most.
        rate_per_s: Slots taken in any one-second window, at most.
        wait_timeout_s: How long ``slot()`` waits before giving up.
        lease_s: A holder that never releases (a killed process) stops counting after
            this long; keep it above the step's time limit.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        concurrency: int,
        rate_per_s: int,
        wait_timeout_s: float,
        lease_s: float = 300.0,
    ) -> None:
        if concurrency < 1 or rate_per_s < 1:
            raise ValueError("concurrency and rate_per_s must be at least 1")
        self.client = client
        self.key = key
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s
        self.wait_timeout_s = wait_timeout_s
        self.lease_ms = int(lease_s * 1000)
        self._acquire = client.register_script(_ACQUIRE)

    @property
    def slots_key(self) -> str:
        """The sorted set of current holders."""
        return f"{self.key}:slots"

    @property
    def window_key(self) -> str:
        """The sorted set of tokens taken in the last second."""
        return f"{self.key}:window"

    def try_acquire(self, token: str) -> bool:
        """Take a slot and a window token for ``token`` if both are free, without waiting.

        Raises:
            TransientError: Redis could not be reached.
        """
        try:
            taken = self._acquire(
                keys=[self.slots_key, self.window_key],
                args=[self.concurrency, self.rate_per_s, self.lease_ms, token],
            )
        except redis.RedisError as error:
            raise TransientError(f"throttle {self.key} unreachable: {error}") from error
        return bool(taken)

    def release(self, token: str) -> None:
        """Give back the slot of ``token`` (the window token stays for its second).

        Raises:
            TransientError: Redis could not be reached (the lease frees the slot later).
        """
        try:
            self.client.zrem(self.slots_key, token)
        except redis.RedisError as error:
            raise TransientError(f"throttle {self.key} unreachable: {error}") from error

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Hold a slot for the duration of the block, if one frees up in time.

        Yields:
            True while holding the slot; False when none was free within
            ``wait_timeout_s`` (the block holds nothing then).

        Raises:
            TransientError: Redis could not be reached.
        """
        token = uuid.uuid4().hex
        if not self._wait_for(token):
            yield False
            return
        try:
            yield True
        except BaseException as error:
            try:
                self.release(token)
            except TransientError as release_error:
                # The block's own error decides retry vs dead letter: keep it, and
                # say why the slot stays taken until its lease ends.
                error.add_note(f"releasing the throttle slot also failed: {release_error}")
            raise
        self.release(token)

    def _wait_for(self, token: str) -> bool:
        deadline = time.monotonic() + self.wait_timeout_s
        delay = MIN_SLEEP_S
        while not self.try_acquire(token):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Full jitter keeps waiting workers from retrying in lockstep.
            time.sleep(min(remaining, random.uniform(MIN_SLEEP_S, delay)))  # noqa: S311
            delay = min(delay * 2, MAX_SLEEP_S)
        return True


class Throttles:
    """Several throttles held together (a step that calls two vendors), in a fixed order.

    Args:
        throttles: The throttles, acquired in the order given (callers sort them by
            vendor, so two steps never wait on each other's half-held pairs for long).
    """

    def __init__(self, throttles: Sequence[Throttle]) -> None:
        self.throttles = tuple(throttles)

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Hold a slot of every throttle, or none (yields False) when one is not free."""
        with ExitStack() as stack:
            for throttle in self.throttles:
                if not stack.enter_context(throttle.slot()):
                    stack.close()
                    yield False
                    return
            yield True
