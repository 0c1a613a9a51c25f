"""The inbox relay: publishes accepted jobs whose first message never reached the bus.

Intake commits the job to the ledger before answering, then hands it to its dispatcher.
When the broker is down (or slow, and the dispatcher's breaker is open) the job stays
pending; each scheduler tick hands the pending jobs (oldest first, accepted at least
``min_age_s`` ago so the dispatcher is not raced) to the bus and marks them published.
A job published twice (the dispatcher published but could not mark it) is harmless:
every step is idempotent on the contract's key.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contracts import BY_NAME
from contracts.errors import TransientError
from infra.bus.publishing import Envelope, Publisher
from infra.logs import get_logger
from infra.store.protocols import JobLedger

_log = get_logger(__name__)


def relay_once(
    ledger: JobLedger, publisher: Publisher, *, min_age_s: float, limit: int = 500
) -> int:
    """Publish up to ``limit`` pending jobs and mark each one published.

    Stops at the first ``TransientError`` (the broker is still down); the remaining jobs
    stay pending for the next tick. The jobs published are marked in one commit at the
    end (if that commit fails they are published again next time: harmless). A job whose
    payload no longer validates (or names a contract this code does not know) is failed
    at intake — step ``intake``, with the reason — and logged once: it is not retried.

    Returns:
        How many jobs were published.
    """
    published: list[str] = []
    try:
        for job in ledger.pending(min_age_s=min_age_s, limit=limit):
            envelope = first_envelope(job.job_id, job.contract, job.payload)
            if envelope is None:
                ledger.fail_at_intake(job.job_id, error=_why_invalid(job.contract, job.payload))
                continue
            try:
                publisher.publish(envelope)
            except TransientError as error:
                _log.warning(
                    "relay.broker_unavailable",
                    published=len(published),
                    job_id=job.job_id,
                    error=str(error),
                )
                break
            published.append(job.job_id)
            _log.info("relay.published", job_id=job.job_id, correlation_id=job.correlation_id)
    finally:
        # One commit for the whole pass: after an outage the backlog moves at the
        # broker's pace, not one database commit per job.
        ledger.mark_published(*published)
    if published:
        _log.info("relay.done", published=len(published))
    return len(published)


def first_envelope(job_id: str, contract: str, payload: dict[str, Any]) -> Envelope | None:
    """The envelope of a job's first contract, from the inbox; None when it is invalid.

    An invalid one is logged as an error (without the payload): it cannot be published
    until someone repairs it, and it must not block the jobs behind it.
    """
    contract_type = BY_NAME.get(contract)
    if contract_type is None:
        _log.error("relay.unknown_contract", job_id=job_id, contract=contract)
        return None
    try:
        return Envelope.of(contract_type.model_validate(payload))
    except ValidationError as error:
        _log.error(
            "relay.invalid_payload", job_id=job_id, contract=contract, errors=error.error_count()
        )
        return None


def _why_invalid(contract: str, payload: dict[str, Any]) -> str:
    """Why a pending job cannot be published: field paths and messages, never values."""
    contract_type = BY_NAME.get(contract)
    if contract_type is None:
        return f"failed at intake: unknown contract {contract}"
    try:
        contract_type.model_validate(payload)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(body)'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)[:5]
        )
        return f"failed at intake: {contract} no longer validates ({fields})"
    return f"failed at intake: {contract} could not be published"
