"""The registry: binds every declared pipeline's steps to Dramatiq actors.

Each ``BoundStep`` (``actors.pipeline``) becomes one actor, named and queued by its
contract's route, so routes and actors cannot drift apart. An actor's options are, in
order of precedence: ``SWITCHBOARD_ACTORS__<ACTOR>__…``, the step's declared options,
the ``SWITCHBOARD_STEPS__…`` defaults.

Retry policy: transient errors retry up to ``max_retries`` times with exponential
backoff between ``min_backoff_ms`` and ``max_backoff_ms``; ``PermanentError`` and
``pydantic.ValidationError`` go to the dead-letter queue at once. A message waiting for
a vendor's throttle is deferred, not retried (``infra.bus.deferral``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
from pydantic import ValidationError

from actors.pipeline import ActorOptions, BoundStep
from actors.shell import Deferral, MessageRefs, StepShell
from contracts.errors import PermanentError
from infra.bus.publishing import Publisher
from infra.bus.throttle import Throttle, Throttles
from infra.settings import ActorOverride, StepSettings
from infra.store.protocols import JobProgress


def default_options(settings: StepSettings) -> ActorOptions:
    """The options every actor starts from."""
    return ActorOptions(
        max_retries=settings.max_retries,
        min_backoff_ms=settings.min_backoff_ms,
        max_backoff_ms=settings.max_backoff_ms,
        time_limit_ms=settings.time_limit_ms,
    )


def resolve_options(
    steps: Sequence[BoundStep],
    defaults: StepSettings,
    overrides: Mapping[str, ActorOverride],
) -> dict[str, ActorOptions]:
    """Each step's final actor options, by actor name.

    Raises:
        ValueError: An override names no declared actor (a typo would otherwise be
            ignored silently); the message lists the known ones.
    """
    known = {step.name for step in steps}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"SWITCHBOARD_ACTORS__… names unknown actors {unknown}; known: {sorted(known)}"
        )
    base = default_options(defaults)
    resolved: dict[str, ActorOptions] = {}
    for step in steps:
        options = step.options.over(base)
        override = overrides.get(step.name)
        if override is not None:
            options = ActorOptions(**override.model_dump()).over(options)
        resolved[step.name] = options
    return resolved


def dramatiq_options(options: ActorOptions) -> dict[str, Any]:
    """Dramatiq's actor options for ``options`` (retries, backoff, time limit, throws)."""
    return {
        "max_retries": options.max_retries,
        "min_backoff": options.min_backoff_ms,
        "max_backoff": options.max_backoff_ms,
        "time_limit": options.time_limit_ms,
        "throws": (PermanentError, ValidationError),
    }


def message_refs(steps: Sequence[BoundStep]) -> MessageRefs:
    """How progress names the messages of ``steps``.

    Raises:
        ValueError: Two steps share an actor name.
    """
    positions: dict[str, int] = {}
    for step in steps:
        if step.name in positions:
            raise ValueError(f"two pipeline steps are both named {step.name}")
        positions[step.name] = step.position
    return MessageRefs(positions)


@dataclass(frozen=True)
class Bus:
    """What every actor shell shares.

    Attributes:
        publisher: Publishes what each step returns.
        progress: Job progress the shells report to.
        refs: Names messages for progress.
        throttles: One throttle per vendor, by vendor name.
        deferral: Defers messages whose vendors are busy.
    """

    publisher: Publisher
    progress: JobProgress
    refs: MessageRefs
    throttles: Mapping[str, Throttle]
    deferral: Deferral


def register_steps(
    broker: dramatiq.Broker,
    steps: Sequence[BoundStep],
    *,
    bus: Bus,
    options: Mapping[str, ActorOptions],
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare one actor per step on ``broker`` (never the global one).

    Raises:
        ValueError: A step calls a vendor without a throttle.

    Returns:
        The actors by name.
    """
    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for step in steps:
        missing = [v for v in step.vendors if v not in bus.throttles]
        if missing:
            raise ValueError(f"{step.name} calls {missing} but no throttle exists for them")
        shell = StepShell(
            step=step,
            publisher=bus.publisher,
            progress=bus.progress,
            refs=bus.refs,
            throttle=Throttles([bus.throttles[v] for v in step.vendors]) if step.vendors else None,
            deferral=bus.deferral,
        )
        declare = dramatiq.actor(
            broker=broker,
            actor_name=step.name,
            queue_name=step.contract.route.queue,
            **dramatiq_options(options[step.name]),
        )
        actors[step.name] = declare(shell)
    return actors
