"""The pipeline table: which step consumes each contract, with what ports and options.

A pipeline is data. Each row names the contract, the step's ``run``, the keyword ports
it takes (mapped to ``WorkerPorts`` fields), whether it calls a rate-limited vendor
(then it runs inside a ``Throttle`` slot) and which retry budget it uses.
``register_actors`` binds every row to a Dramatiq actor named and queued by the
contract's route, so routes and actors cannot drift apart.

Retry policy: transient errors retry up to ``max_retries`` times with exponential
backoff between ``min_backoff_ms`` and ``max_backoff_ms`` (``fetch_transcript`` polls a
conversation that is not done yet, so it gets ``transcript_max_retries``);
``PermanentError`` and ``pydantic.ValidationError`` go to the dead-letter queue at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import dramatiq
from pydantic import ValidationError

from actors.ports import (
    Analyzer,
    CallbackBook,
    CallRecords,
    CheckpointReader,
    Embedder,
    HealthRecords,
    TranscriptSource,
    VectorIndex,
)
from actors.shell import Slots, StepShell
from actors.steps import (
    analyze_call,
    fetch_transcript,
    index_call,
    persist_call,
    record_health_check,
    schedule_callback,
)
from contracts import (
    CallAnalyzed,
    CallIndexed,
    CallTranscribed,
    Contract,
    HealthCheckJobData,
    PostCallJobData,
    ScheduleCallbackCommand,
)
from contracts.errors import PermanentError
from infra.bus.broker import SwitchboardBroker
from infra.bus.publishing import Publisher
from infra.bus.throttle import Throttle
from infra.settings import StepSettings
from infra.store.protocols import JobProgress

THROTTLE_WAIT_S = 30.0
"""How long a vendor step waits for a throttle slot before retrying later."""


@dataclass(frozen=True)
class WorkerPorts:
    """Every adapter the steps need, wired at the worker's root."""

    transcripts: TranscriptSource
    analyzer: Analyzer
    embedder: Embedder
    vectors: VectorIndex
    calls: CallRecords
    callbacks: CallbackBook
    health: HealthRecords
    checkpoints: CheckpointReader
    now: Callable[[], datetime]


@dataclass(frozen=True)
class Step:
    """One row of the pipeline table.

    Attributes:
        contract: The contract consumed; its route names the actor and queue.
        run: The step function ``run(message, **ports)``.
        ports: The step's keyword → the ``WorkerPorts`` field passed to it.
        throttled: Whether it calls a rate-limited vendor.
        retries_setting: The ``StepSettings`` field giving its ``max_retries``.
    """

    contract: type[Contract]
    run: Callable[..., list[Contract]]
    ports: Mapping[str, str] = field(default_factory=dict)
    throttled: bool = False
    retries_setting: str = "max_retries"

    @property
    def name(self) -> str:
        """The step and actor name."""
        return self.contract.route.actor


PIPELINE: tuple[Step, ...] = (
    Step(
        PostCallJobData,
        fetch_transcript.run,
        {"transcripts": "transcripts"},
        throttled=True,
        retries_setting="transcript_max_retries",
    ),
    Step(
        CallTranscribed,
        analyze_call.run,
        {"analyzer": "analyzer", "calls": "calls", "now": "now"},
        throttled=True,
    ),
    Step(
        CallAnalyzed,
        index_call.run,
        {"embedder": "embedder", "index": "vectors"},
        throttled=True,
    ),
    Step(CallIndexed, persist_call.run, {"calls": "calls"}),
    Step(ScheduleCallbackCommand, schedule_callback.run, {"callbacks": "callbacks"}),
    Step(
        HealthCheckJobData,
        record_health_check.run,
        {"checkpoints": "checkpoints", "health": "health"},
    ),
)
"""Every step, one per contract in ``contracts.CONTRACTS``."""


def actor_options(step: Step, settings: StepSettings) -> dict[str, Any]:
    """The Dramatiq options of a step's actor (retries, backoff, time limit, throws)."""
    return {
        "max_retries": int(getattr(settings, step.retries_setting)),
        "min_backoff": settings.min_backoff_ms,
        "max_backoff": settings.max_backoff_ms,
        "time_limit": settings.time_limit_ms,
        "throws": (PermanentError, ValidationError),
    }


def bind_ports(step: Step, ports: WorkerPorts) -> Callable[[Any], list[Contract]]:
    """The step's ``run`` with its keyword ports taken from ``ports``."""
    kwargs = {keyword: getattr(ports, name) for keyword, name in step.ports.items()}
    return partial(step.run, **kwargs)


def build_throttles(broker: SwitchboardBroker, settings: StepSettings) -> dict[str, Throttle]:
    """One Redis throttle per vendor step, shared by every worker process on the bus.

    The lease outlives the step's time limit, so a slot held by a killed process frees
    itself only after the step could no longer be running.
    """
    return {
        step.name: Throttle(
            broker.client,
            f"{broker.namespace}:throttle:{step.name}",
            concurrency=settings.vendor_concurrency,
            rate_per_s=settings.vendor_rate_per_s,
            wait_timeout_s=min(THROTTLE_WAIT_S, settings.time_limit_ms / 4000),
            lease_s=settings.time_limit_ms / 1000 + 30,
        )
        for step in PIPELINE
        if step.throttled
    }


def register_actors(
    broker: dramatiq.Broker,
    *,
    ports: WorkerPorts,
    publisher: Publisher,
    progress: JobProgress,
    throttles: Mapping[str, Slots],
    settings: StepSettings,
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare one actor per pipeline step on ``broker``.

    Args:
        broker: The worker's broker (never the global one).
        ports: The adapters.
        publisher: Publishes what each step returns.
        progress: Job progress the shell reports to.
        throttles: Throttles by step name; throttled steps without one run unthrottled.
        settings: Retry, backoff and time-limit settings.

    Returns:
        The actors by name.
    """
    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for step in PIPELINE:
        shell = StepShell(
            step=step.name,
            contract=step.contract,
            handler=bind_ports(step, ports),
            publisher=publisher,
            progress=progress,
            throttle=throttles.get(step.name) if step.throttled else None,
        )
        declare = dramatiq.actor(
            broker=broker,
            actor_name=step.name,
            queue_name=step.contract.route.queue,
            **actor_options(step, settings),
        )
        actors[step.name] = declare(shell)
    return actors
