"""Publishing contracts by route name, so producers never import actor code.

A message on the wire is a Dramatiq message whose single argument is
``contract.model_dump(mode="json")`` and whose options carry ``contract``,
``schema_version``, ``correlation_id``, ``idempotency_key``, ``job_id`` and
``tenant_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from contracts import Contract


@dataclass(frozen=True)
class Envelope:
    """A contract ready for the wire: its route, payload and options."""

    queue: str
    actor: str
    payload: dict[str, Any]
    options: dict[str, Any]

    @classmethod
    def of(cls, contract: Contract) -> Envelope:
        """Build the envelope of a contract; its options repeat the job identity."""
        options: dict[str, Any] = {
            "contract": type(contract).__name__,
            "schema_version": contract.schema_version,
            "job_id": contract.job_id,
            "correlation_id": contract.correlation_id,
            "idempotency_key": contract.idempotency_key,
        }
        if contract.tenant_id is not None:
            options["tenant_id"] = contract.tenant_id
        return cls(
            queue=contract.route.queue,
            actor=contract.route.actor,
            payload=contract.model_dump(mode="json"),
            options=options,
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
