"""The inbox relay: publishes accepted jobs whose first message never reached the bus.

Intake commits the job to the ledger before answering, then publishes. When Redis is
down at that moment the job stays pending; each scheduler tick hands the pending jobs
(oldest first, accepted at least ``min_age_s`` ago so the producer's own publish is not
raced) to the bus and marks them published. A job published twice (the producer
published but died before marking it) is harmless: every step is idempotent on the
contract's key.
"""

from __future__ import annotations

from pydantic import ValidationError

from contracts import BY_NAME
from contracts.errors import TransientError
from infra.bus.publishing import Envelope, Publisher
from infra.logs import get_logger
from infra.store.protocols import JobLedger
from infra.store.records import PendingJob

_log = get_logger(__name__)


def relay_once(
    ledger: JobLedger, publisher: Publisher, *, min_age_s: float, limit: int = 500
) -> int:
    """Publish up to ``limit`` pending jobs and mark each one published.

    Stops at the first ``TransientError`` (the broker is still down); the remaining jobs
    stay pending for the next tick. A job whose payload no longer validates is left
    pending and logged as an error on every tick, for an operator to repair.

    Returns:
        How many jobs were published.
    """
    published = 0
    for job in ledger.pending(min_age_s=min_age_s, limit=limit):
        envelope = _envelope(job)
        if envelope is None:
            continue
        try:
            publisher.publish(envelope)
        except TransientError as error:
            _log.warning(
                "relay.broker_unavailable", published=published, job_id=job.job_id, error=str(error)
            )
            return published
        ledger.mark_published(job.job_id)
        published += 1
        _log.info("relay.published", job_id=job.job_id, correlation_id=job.correlation_id)
    if published:
        _log.info("relay.done", published=published)
    return published


def _envelope(job: PendingJob) -> Envelope | None:
    contract_type = BY_NAME.get(job.contract)
    if contract_type is None:
        _log.error("relay.unknown_contract", job_id=job.job_id, contract=job.contract)
        return None
    try:
        contract = contract_type.model_validate(job.payload)
    except ValidationError:
        # Not retryable by the relay, and not a reason to block the jobs behind it: the
        # job stays pending (visible, re-reported every tick) until someone repairs it.
        _log.exception("relay.invalid_payload", job_id=job.job_id, contract=job.contract)
        return None
    return Envelope.of(contract, job_id=job.job_id)
