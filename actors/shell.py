"""The actor shell: what every pipeline step runs inside.

For one message the shell:

1. validates the payload into the step's contract (``pydantic.ValidationError`` is
   permanent: the registry lists it in the actor's ``throws``);
2. binds the log context (correlation_id, job_id, step, tenant_id);
3. marks the step started in the job's progress;
4. runs the step's handler, inside the throttle's slot for vendor steps;
5. publishes every contract the handler returned, only after it returned (the
   repositories have committed its writes by then, so a consumer of the next contract
   sees them);
6. marks the step succeeded, ``final`` when nothing follows.

Exceptions propagate to Dramatiq, which retries or dead-letters the message; the
failure is recorded by ``infra.bus.failures.FailureRecorder`` and reported to the job's
progress by the worker root (``progress_on_failure``). A redelivery runs the whole shell
again; steps are idempotent on their contract's key, so that is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from contracts import Contract
from infra.bus.publishing import Envelope, Publisher
from infra.logs import bind_context, get_logger
from infra.store.protocols import JobProgress

Handler = Callable[[Any], Sequence[Contract]]
"""A step's ``run`` with its ports bound: contract in, next contracts out."""

_log = get_logger(__name__)


class Slots(Protocol):
    """A throttle: ``slot()`` holds one concurrency/rate slot for a block."""

    def slot(self) -> AbstractContextManager[None]:
        """Wait for a slot and hold it inside the block.

        Raises:
            TransientError: No slot within the throttle's wait timeout.
        """
        ...


@dataclass(frozen=True)
class StepShell:
    """Runs one step for one contract type; Dramatiq calls it with the message payload.

    Attributes:
        step: The step (and actor) name, e.g. ``analyze_call``.
        contract: The contract the step consumes.
        handler: The step's ``run`` with its ports bound.
        publisher: Where returned contracts are published.
        progress: The job progress the step reports to.
        throttle: The vendor throttle, for steps that call a rate-limited vendor.
    """

    step: str
    contract: type[Contract]
    handler: Handler
    publisher: Publisher
    progress: JobProgress
    throttle: Slots | None = None

    def __call__(self, payload: dict[str, Any]) -> None:
        """Process one message payload.

        Raises:
            pydantic.ValidationError: The payload is not a valid contract (permanent).
            contracts.errors.PermanentError: The step cannot succeed.
            contracts.errors.TransientError: Retry later.
        """
        message = self.contract.model_validate(payload)
        job_id: str | None = getattr(message, "job_id", None)
        context = {
            "correlation_id": message.correlation_id,
            "job_id": job_id,
            "step": self.step,
            "tenant_id": message.tenant,
        }
        with bind_context(**context):
            if job_id is not None:
                self.progress.step_started(job_id, self.step)
            slot = self.throttle.slot() if self.throttle is not None else nullcontext()
            with slot:
                results = list(self.handler(message))
            for result in results:
                self.publisher.publish(Envelope.of(result, job_id=job_id))
            if job_id is not None:
                self.progress.step_succeeded(job_id, self.step, final=not results)
            _log.info("step done", published=[type(r).__name__ for r in results])


def progress_on_failure(
    progress: JobProgress,
) -> Callable[[Any, BaseException, bool], None]:
    """The ``FailureRecorder`` hook that reports failures to the job's progress.

    Uses the message's ``job_id`` option (set by ``Envelope.of``) and its actor name as
    the step; messages without a job id are only recorded by the failure recorder.
    """

    def on_failure(message: Any, exception: BaseException, dead: bool) -> None:
        job_id = message.options.get("job_id")
        if job_id is None:
            return
        progress.step_failed(
            job_id,
            message.actor_name,
            error=f"{type(exception).__name__}: {exception}",
            dead=dead,
        )

    return on_failure
