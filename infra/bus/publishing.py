"""Publishing contracts by route name, so producers never import actor code.

A message on the wire is a Dramatiq message whose single argument is
``contract.model_dump(mode="json")`` and whose options carry ``contract``,
``schema_version``, ``correlation_id``, ``idempotency_key``, ``job_id`` and
``tenant_id`` (``contracts.messages`` builds them; services outside Switchboard publish
with the same function).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from contracts import Contract
from contracts.messages import dramatiq_message


@dataclass(frozen=True)
class Envelope:
    """A contract ready for the wire: its route, payload and options."""

    queue: str
    actor: str
    payload: dict[str, Any]
    options: dict[str, Any]

    @classmethod
    def of(cls, contract: Contract) -> Envelope:
        """Build the envelope of a contract; its options repeat the job identity.

        The fields come from ``contracts.messages.dramatiq_message``, the function other
        services publish with, so their messages and ours cannot differ.
        """
        message = dramatiq_message(contract)
        return cls(
            queue=message["queue_name"],
            actor=message["actor_name"],
            payload=message["args"][0],
            options=message["options"],
        )


@runtime_checkable
class BatchPublisher(Protocol):
    """A publisher that also enqueues a fan-out in a few round trips."""

    def publish(self, envelope: Envelope) -> str:
        """Enqueue one envelope; return the broker's message id."""
        ...

    def publish_many(self, envelopes: Sequence[Envelope]) -> list[str]:
        """Enqueue every envelope, in order; return their message ids.

        Raises:
            TransientError: The broker could not be reached (some may be enqueued).
        """
        ...


class Publisher(Protocol):
    """Puts contracts on the bus."""

    def publish(self, envelope: Envelope) -> str:
        """Enqueue the envelope; return the broker's message id.

        Raises:
            TransientError: The broker could not be reached; nothing was enqueued.
        """
        ...


@dataclass
class InMemoryPublisher:
    """Keeps published envelopes in a list: the publisher of unit tests."""

    published: list[Envelope] = field(default_factory=list)

    def publish(self, envelope: Envelope) -> str:
        """Append the envelope and return its position as the message id."""
        self.published.append(envelope)
        return str(len(self.published))

    def publish_many(self, envelopes: Sequence[Envelope]) -> list[str]:
        """Append every envelope; return their positions."""
        return [self.publish(envelope) for envelope in envelopes]
