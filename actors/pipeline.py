"""How a workflow declares its pipeline: steps, typed port binding, vendors and options.

Each workflow has one module in ``actors.pipelines`` holding its ports (a dataclass of
the adapters its steps take) and its ``Pipeline``: the steps in order, each with

- the contract it consumes (whose route names the actor and queue);
- ``bind``: a function from the workflow's ports to the step's handler, so mypy
  checks every port a step receives (no port names as strings);
- ``vendors``: the adapters it calls that may belong to a rate-limited vendor; the
  worker holds each named vendor's throttle while the step runs (a local adapter
  names no vendor and is not throttled);
- ``options``: its actor options where they differ from the settings' defaults (e.g.
  more retries for a step that polls).

``Pipeline.bind(ports)`` gives ``BoundStep`` rows that ``actors.registry`` declares as
Dramatiq actors. Nothing else lists steps: views order steps by the position recorded
with each message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, TypeVar

from actors.ports import VendorClient
from contracts import Contract

P = TypeVar("P")
C = TypeVar("C", bound=Contract)

Handler = Callable[[C], Sequence[Contract]]
"""A step with its ports bound: contract in, the next contracts out."""


@dataclass(frozen=True)
class ActorOptions:
    """Retry and time-limit options of an actor; None leaves the setting's default.

    Attributes:
        max_retries: Retries after the first attempt.
        min_backoff_ms: The first retry's delay.
        max_backoff_ms: The largest retry delay.
        time_limit_ms: A run longer than this is interrupted.
    """

    max_retries: int | None = None
    min_backoff_ms: int | None = None
    max_backoff_ms: int | None = None
    time_limit_ms: int | None = None

    def over(self, base: ActorOptions) -> ActorOptions:
        """These options where set, ``base``'s elsewhere."""
        changes = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(base, **{k: v for k, v in changes.items() if v is not None})


def _no_vendors(_ports: object) -> Sequence[VendorClient]:
    return ()


@dataclass(frozen=True)
class Step(Generic[P, C]):
    """One step of a pipeline.

    Attributes:
        contract: The contract it consumes; its route names the actor and the queue.
        bind: Builds the step's handler from the workflow's ports.
        vendors: The adapters it calls that may be a rate-limited vendor's.
        options: Actor options that differ from the defaults.
    """

    contract: type[C]
    bind: Callable[[P], Handler[C]]
    vendors: Callable[[P], Sequence[VendorClient]] = _no_vendors
    options: ActorOptions = field(default_factory=ActorOptions)

    @property
    def name(self) -> str:
        """The step's (and its actor's) name."""
        return self.contract.route.actor


@dataclass(frozen=True)
class BoundStep:
    """A step with its ports bound, ready to become an actor.

    Attributes:
        pipeline: The pipeline's name (the kind of job it runs).
        position: Its place in the pipeline, from 0.
        contract: The contract it consumes.
        handler: Its handler.
        vendors: The rate-limited vendors its adapters call, sorted.
        options: Its declared actor options.
    """

    pipeline: str
    position: int
    contract: type[Contract]
    handler: Handler[Any]
    vendors: tuple[str, ...]
    options: ActorOptions

    @property
    def name(self) -> str:
        """The step's (and its actor's) name."""
        return self.contract.route.actor


@dataclass(frozen=True)
class Pipeline(Generic[P]):
    """A workflow's steps, in order.

    Attributes:
        name: The kind of job the pipeline runs (``post_call``, ``health_check``).
        steps: Its steps; the first consumes the job's first contract.
    """

    name: str
    steps: tuple[Step[P, Any], ...]

    def bind(self, ports: P) -> list[BoundStep]:
        """Bind every step to ``ports``."""
        return [
            BoundStep(
                pipeline=self.name,
                position=position,
                contract=step.contract,
                handler=step.bind(ports),
                vendors=tuple(
                    sorted({c.vendor for c in step.vendors(ports) if c.vendor is not None})
                ),
                options=step.options,
            )
            for position, step in enumerate(self.steps)
        ]
