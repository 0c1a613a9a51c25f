"""The contract base: what every message on the bus has in common.

A contract is pure data. It names its own route (queue and actor, as strings) so that
a producer in any service can publish it without importing actor code, carries a
`schema_version`, and exposes a stable `idempotency_key` that every consumer uses to
make a duplicate delivery a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Route:
    """Where a contract is delivered: a Dramatiq queue and the actor consuming it.

    Attributes:
        queue: The queue name, e.g. ``calls.analyze``.
        actor: The actor name, e.g. ``analyze_call``.
    """

    queue: str
    actor: str


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a timezone offset (e.g. 2026-01-01T10:00:00Z)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]
"""A datetime that must carry a UTC offset; naive datetimes are rejected."""


class Contract(BaseModel):
    """Base class of every message on the bus.

    Frozen, and tolerant of unknown fields (``extra="ignore"``) so that a newer producer
    can add a field without breaking an older consumer during a rolling deploy.

    Subclasses set ``route`` and implement ``idempotency_key``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    route: ClassVar[Route]
    schema_version: int = Field(
        default=1, description="Version of this contract's schema; additive changes keep it."
    )

    @property
    def idempotency_key(self) -> str:
        """A key that is equal for every delivery of the same logical message."""
        raise NotImplementedError

    @property
    def correlation_id(self) -> str:
        """The id of the originating call or request, carried into every log line."""
        raise NotImplementedError

    @property
    def tenant(self) -> str | None:
        """The tenant the message belongs to, when there is one."""
        return None
