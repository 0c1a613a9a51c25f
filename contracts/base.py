"""The contract base: what every message on the bus has in common.

A contract is pure data. It names its own route (queue and actor, as strings) so that
a producer in any service can publish it without importing actor code, carries a
`schema_version`, its job identity as declared fields (``job_id``, ``tenant_id``,
``correlation_id``, validated when the contract is built), and exposes a stable
`idempotency_key` that every consumer uses to make a duplicate delivery a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import AwareDatetime, Identifier

__all__ = ["AwareDatetime", "Contract", "Route", "Value"]


@dataclass(frozen=True)
class Route:
    """Where a contract is delivered: a Dramatiq queue and the actor consuming it.

    Attributes:
        queue: The queue name, e.g. ``calls.analyze``.
        actor: The actor name, e.g. ``analyze_call``.
    """

    queue: str
    actor: str


class Value(BaseModel):
    """Base of the values contracts carry (turns, analyses, answers).

    Frozen, tolerant of unknown fields, and validation errors never echo the input:
    it may be a transcript, and error messages end up in logs and dead letters.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class Contract(Value):
    """Base class of every message on the bus.

    Frozen, and tolerant of unknown fields (``extra="ignore"``) so that a newer producer
    can add a field without breaking an older consumer during a rolling deploy.

    Subclasses set ``route`` and implement ``idempotency_key``.
    """

    route: ClassVar[Route]
    job_id: Identifier = Field(
        description="The job this message belongs to: the id intake answered with."
    )
    tenant_id: Identifier | None = Field(
        default=None, description="The tenant the job belongs to, when it has one."
    )
    correlation_id: Identifier = Field(
        description="The originating call or request; carried into every log line."
    )
    schema_version: int = Field(
        default=1, description="Version of this contract's schema; additive changes keep it."
    )

    @property
    def idempotency_key(self) -> str:
        """A key that is equal for every delivery of the same logical message.

        Unique within the job: progress is recorded per key.
        """
        raise NotImplementedError
