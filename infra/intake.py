"""One intake for every producer: record the job, answer, publish without waiting.

A producer (a webhook resource, an API endpoint, a scheduler tick) maps its request to
the job's first contract and calls ``Intake.submit``, which

1. commits the job to the inbox, once per dedupe key: (source, tenant, external id),
   where the external id is the request's ``Idempotency-Key`` when it sent one, else
   its natural id (a conversation id);
2. for a new job, hands its first message to the dispatcher (which never makes the
   caller wait on the broker) and answers ``accepted``;
3. for a repeat, answers with the first job's id: ``duplicate`` for a natural id
   (a webhook delivered twice); ``replayed`` for the same ``Idempotency-Key`` and the
   same body; ``IdempotencyKeyReused`` for the same key with another body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from contracts import Contract
from infra.bus.dispatch import Dispatcher
from infra.bus.publishing import Envelope
from infra.store.protocols import JobLedger
from infra.store.records import InboxEntry

Outcome = Literal["accepted", "duplicate", "replayed"]

IDEMPOTENCY_KEY_PREFIX = "idempotency-key:"
"""External ids taken from an ``Idempotency-Key`` header start with this."""


class IdempotencyKeyReused(ValueError):  # noqa: N818 (named for what the client did)
    """An ``Idempotency-Key`` came back with a different body than its first request."""


@dataclass(frozen=True)
class Admission:
    """What intake did with a request.

    Attributes:
        job_id: The job's id (the first job's, for a repeat).
        outcome: ``accepted``, ``duplicate`` or ``replayed`` (see the module docstring).
    """

    job_id: str
    outcome: Outcome


@dataclass(frozen=True)
class Submission:
    """A request mapped to its job.

    Attributes:
        source: Where it came from (``elevenlabs``…).
        tenant_id: Its tenant; None for jobs of the platform itself.
        kind: The job's kind: the pipeline its first contract starts.
        contract: The first contract; its ``job_id`` is the new job's id.
        external_id: The request's natural id at the source.
        body: The raw request body (hashed, for ``Idempotency-Key`` checks).
        idempotency_key: The request's ``Idempotency-Key``, if it sent one.
    """

    source: str
    tenant_id: str | None
    kind: str
    contract: Contract
    external_id: str
    body: bytes
    idempotency_key: str | None = None


class Intake:
    """Records and dispatches jobs for every producer.

    Args:
        ledger: The inbox.
        dispatcher: Hands new jobs' first messages to the bus.
    """

    def __init__(self, ledger: JobLedger, dispatcher: Dispatcher) -> None:
        self._ledger = ledger
        self._dispatcher = dispatcher

    def submit(self, submission: Submission) -> Admission:
        """Record the job (or find the first one) and dispatch it if it is new.

        Raises:
            IdempotencyKeyReused: The key was used before with another body.
            TransientError: The inbox could not be reached (nothing was accepted).
        """
        key = submission.idempotency_key
        request_hash = hashlib.sha256(submission.body).hexdigest() if key is not None else None
        accepted = self._ledger.accept(
            InboxEntry(
                source=submission.source,
                external_id=(
                    f"{IDEMPOTENCY_KEY_PREFIX}{key}" if key is not None else submission.external_id
                ),
                tenant_id=submission.tenant_id,
                kind=submission.kind,
                contract=submission.contract,
                request_hash=request_hash,
            )
        )
        if accepted.created:
            self._dispatcher.dispatch(accepted.job_id, Envelope.of(submission.contract))
            return Admission(accepted.job_id, "accepted")
        if key is None:
            return Admission(accepted.job_id, "duplicate")
        if accepted.request_hash != request_hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key} was first used with another body (job {accepted.job_id})"
            )
        return Admission(accepted.job_id, "replayed")
