"""The actor shell: what every pipeline step runs inside.

For one message the shell:

1. validates the payload into the step's contract (``pydantic.ValidationError`` is
   permanent: the registry lists it in the actor's ``throws``);
2. binds the log context (correlation_id, job_id, step, tenant_id);
3. for a step that calls rate-limited vendors, takes a slot of each vendor's throttle;
   when none frees up in time it defers the message (a delayed copy, the same retry
   budget) and returns;
4. marks the message started in the job's progress;
5. runs the step's handler; an expected error (``NotReadyError``: a conversation still
   processing) is logged here as one line without a traceback, then re-raised;
6. publishes every contract the handler returned, only after it returned (the
   repositories have committed its writes by then, so a consumer of the next contract
   sees them); each belongs to the same job; a fan-out is enqueued in batches, a few
   round trips for thousands of messages;
7. marks the message succeeded, with the messages it published as its children.

Exceptions propagate to Dramatiq, which retries or dead-letters the message; the
failure is recorded by ``infra.bus.failures.FailureRecorder`` and reported to the job's
progress by ``progress_on_failure``. A redelivery runs the whole shell again; steps are
idempotent on their contract's key, so that is safe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from actors.pipeline import BoundStep
from contracts import Contract
from contracts.errors import PermanentError, SwitchboardError, TransientError
from infra.bus.publishing import BatchPublisher, Envelope, Publisher
from infra.logs import bind_context, get_logger
from infra.store.protocols import JobProgress
from infra.store.records import MessageRef

_log = get_logger(__name__)


class Slots(Protocol):
    """A throttle: ``slot()`` holds a concurrency and rate slot for a block."""

    def slot(self) -> AbstractContextManager[bool]:
        """Wait a bounded time for a slot; the block learns whether it holds one.

        Raises:
            TransientError: The throttle's store could not be reached.
        """
        ...


class Deferral(Protocol):
    """Puts the message being processed back on its queue for later."""

    def defer(self) -> int:
        """Enqueue the current message again after a delay; return the delay (ms)."""
        ...


class MessageRefs:
    """How progress names a contract: its key, its step and the step's position.

    Args:
        positions: Each step's position in its pipeline, by actor name.
    """

    def __init__(self, positions: Mapping[str, int]) -> None:
        self._positions = dict(positions)

    def of(self, contract: Contract) -> MessageRef:
        """The progress reference of a contract.

        Raises:
            PermanentError: No declared step consumes it.
        """
        return self.named(contract.idempotency_key, contract.route.actor)

    def named(self, key: str, actor: str) -> MessageRef:
        """The progress reference of a message known by key and actor.

        Raises:
            PermanentError: No declared step is called ``actor``.
        """
        position = self._positions.get(actor)
        if position is None:
            raise PermanentError(f"no declared pipeline step consumes messages for {actor}")
        return MessageRef(key=key, step=actor, position=position)


@dataclass(frozen=True)
class StepShell:
    """Runs one step; Dramatiq calls it with the message payload.

    Attributes:
        step: The bound step.
        publisher: Where returned contracts are published.
        progress: The job progress the step reports to.
        refs: Names messages for progress.
        throttle: The step's vendors' throttles; None for a step calling none.
        deferral: Defers a message when its vendors have no slot.
    """

    step: BoundStep
    publisher: Publisher
    progress: JobProgress
    refs: MessageRefs
    throttle: Slots | None
    deferral: Deferral

    def __call__(self, payload: dict[str, Any]) -> None:
        """Process one message payload.

        Raises:
            pydantic.ValidationError: The payload is not a valid contract (permanent).
            contracts.errors.PermanentError: The step cannot succeed.
            contracts.errors.TransientError: Retry later.
        """
        message = self.step.contract.model_validate(payload)
        context = {
            "correlation_id": message.correlation_id,
            "job_id": message.job_id,
            "step": self.step.name,
            "tenant_id": message.tenant_id,
        }
        with bind_context(**context):
            try:
                self._run(message)
            except SwitchboardError as error:
                if error.expected:
                    # The one line about it: Dramatiq's own lines about an expected
                    # error are quiet (infra.bus.log_filters), and it has no traceback.
                    _log.info(
                        "expected failure",
                        error=f"{type(error).__name__}: {error}",
                        retried=isinstance(error, TransientError),
                    )
                raise

    def _run(self, message: Contract) -> None:
        ref = self.refs.of(message)
        slot = self.throttle.slot() if self.throttle is not None else nullcontext(True)
        with slot as granted:
            if not granted:
                delay_ms = self.deferral.defer()
                _log.info("vendor busy; message deferred", vendors=self.step.vendors, ms=delay_ms)
                return
            self.progress.message_started(message.job_id, ref)
            results = list(self.step.handler(message))
        children = self._publish(message, results)
        self.progress.message_succeeded(message.job_id, ref, children=children)
        # Counted by contract: a fan-out publishes thousands of one kind.
        _log.info("step done", published=dict(Counter(type(r).__name__ for r in results)))

    def _publish(self, message: Contract, results: list[Contract]) -> list[MessageRef]:
        for result in results:
            if result.job_id != message.job_id:
                raise PermanentError(
                    f"{self.step.name} returned a {type(result).__name__} of job "
                    f"{result.job_id}, not of its own job {message.job_id}"
                )
        envelopes = [Envelope.of(result) for result in results]
        if len(envelopes) > 1 and isinstance(self.publisher, BatchPublisher):
            self.publisher.publish_many(envelopes)  # a fan-out: a few round trips
        else:
            for envelope in envelopes:
                self.publisher.publish(envelope)
        return [self.refs.of(result) for result in results]


def progress_on_failure(
    progress: JobProgress, refs: MessageRefs
) -> Callable[[Any, BaseException, bool], None]:
    """The ``FailureRecorder`` hook that reports failures to the job's progress.

    Uses the message's ``job_id`` and ``idempotency_key`` options (set by
    ``Envelope.of``); a dead message names itself as the job's dead letter. Messages
    without a job id are only recorded by the failure recorder.
    """

    def on_failure(message: Any, exception: BaseException, dead: bool) -> None:
        options = message.options
        job_id, key = options.get("job_id"), options.get("idempotency_key")
        if job_id is None or key is None:
            return
        progress.message_failed(
            job_id,
            refs.named(key, message.actor_name),
            error=f"{type(exception).__name__}: {exception}",
            dead_letter_id=message.message_id if dead else None,
        )

    return on_failure
