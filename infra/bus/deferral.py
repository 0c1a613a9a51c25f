"""Deferring a message that waits for a vendor's throttle, without spending a retry.

A step whose vendor is saturated should run later, not fail: ``CurrentMessageDeferral``
enqueues a copy of the message being processed (same message id, same retry count)
with a delay, and the shell then returns normally, so the original is acknowledged.
Each deferral doubles the delay (with full jitter) from ``min_delay_ms`` up to
``max_delay_ms``; the count travels in the message's ``deferrals`` option.

At-least-once: a worker killed between the enqueue and the acknowledgement leaves
both copies; the step is idempotent, so the second is a no-op.
"""

from __future__ import annotations

import random

import redis
from dramatiq.middleware import CurrentMessage

from contracts.errors import TransientError
from infra.bus.broker import SwitchboardBroker

DEFERRALS_OPTION = "deferrals"


class CurrentMessageDeferral:
    """Re-enqueues the message the current worker thread is processing.

    Args:
        broker: The worker's broker (it must have the ``CurrentMessage`` middleware).
        min_delay_ms: Delay of the first deferral (before jitter).
        max_delay_ms: Largest delay.
    """

    def __init__(
        self, broker: SwitchboardBroker, *, min_delay_ms: int = 500, max_delay_ms: int = 30_000
    ) -> None:
        self.broker = broker
        self.min_delay_ms = min_delay_ms
        self.max_delay_ms = max_delay_ms

    def defer(self) -> int:
        """Enqueue the current message again after a delay.

        Returns:
            The delay in milliseconds.

        Raises:
            RuntimeError: Called outside a message (no current message).
            TransientError: The broker could not be reached (the message is then
                retried by the bus, which is what an outage calls for anyway).
        """
        message = CurrentMessage.get_current_message()
        if message is None:
            raise RuntimeError("defer() must be called while a message is processed")
        deferrals = int(message.options.get(DEFERRALS_OPTION, 0)) + 1
        ceiling = min(self.max_delay_ms, self.min_delay_ms * 2 ** min(deferrals - 1, 16))
        delay = random.randint(self.min_delay_ms, max(self.min_delay_ms, ceiling))  # noqa: S311
        copy = message.copy(options={DEFERRALS_OPTION: deferrals})
        try:
            self.broker.enqueue(copy, delay=delay)
        except redis.RedisError as error:
            raise TransientError(
                f"broker unreachable, {message.actor_name} not deferred"
            ) from error
        return delay
