"""Publishing envelopes on the Dramatiq bus by queue and actor name.

A producer never imports actor code: the message is built from the envelope's route
(strings) and the consuming worker validates it. Redis errors become
``TransientError`` so callers (the intake, the relay) can keep the job for later.
"""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
import redis

from contracts.errors import TransientError
from infra.bus.broker import SwitchboardBroker, build_broker
from infra.bus.publishing import Envelope
from infra.settings import BrokerSettings

BATCH = 1000
"""Messages enqueued per round trip by ``publish_many``."""


class BrokerPublisher:
    """The ``Publisher`` of the real bus.

    Args:
        broker: The broker to enqueue on (the worker's own, or one from
            ``connect_publisher``).
    """

    def __init__(self, broker: SwitchboardBroker) -> None:
        self.broker = broker

    def publish(self, envelope: Envelope) -> str:
        """Enqueue the envelope's payload as the single argument of its actor.

        Returns:
            The Dramatiq message id.

        Raises:
            TransientError: Redis could not be reached; nothing was enqueued.
        """
        self.broker.declare_queue(envelope.queue)
        message = _message(envelope)
        try:
            sent = self.broker.enqueue(message)
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable, {envelope.actor} not published") from error
        return sent.message_id

    def publish_many(self, envelopes: Sequence[Envelope]) -> list[str]:
        """Enqueue many envelopes (a fan-out) in a few round trips, ``BATCH`` at a time.

        Returns:
            The Dramatiq message ids, in order.

        Raises:
            TransientError: Redis could not be reached; the batches before the failing
                one were enqueued (a redelivery publishes them again: consumers are
                idempotent).
        """
        ids: list[str] = []
        try:
            for start in range(0, len(envelopes), BATCH):
                ids += self.broker.enqueue_many(
                    [_message(e) for e in envelopes[start : start + BATCH]]
                )
        except redis.RedisError as error:
            raise TransientError(
                f"broker unreachable, {len(envelopes) - len(ids)} of {len(envelopes)} "
                "messages not published"
            ) from error
        return ids

    def close(self) -> None:
        """Close the broker's connections."""
        self.broker.close()


def _message(envelope: Envelope) -> dramatiq.Message[object]:
    return dramatiq.Message(
        queue_name=envelope.queue,
        actor_name=envelope.actor,
        args=(envelope.payload,),
        kwargs={},
        options=dict(envelope.options),
    )


def connect_publisher(settings: BrokerSettings, url: str) -> BrokerPublisher:
    """A publisher with its own broker, for processes that only publish (API, scheduler).

    Connects lazily: the first ``publish`` opens the connection.
    """
    return BrokerPublisher(build_broker(settings, url))
