"""Re-driving stalled jobs: published, unfinished, and not moving.

A job's messages can vanish after it was published: a Redis that kept no data
restarted, or a message was stranded (FIELD-NOTES: delayed messages held by a worker
that lost its connection). Every progress report touches the job, so a published job
with no progress for ``idle_s`` is stalled. The tick republishes its first contract
from the inbox; the steps are idempotent on their keys, so what already happened is a
no-op and what was lost happens now. Each re-drive is counted on the job and logged;
after ``max_redrives`` the job is failed instead, saying why.
"""

from __future__ import annotations

from contracts.errors import TransientError
from infra.bus.publishing import Publisher
from infra.logs import get_logger
from infra.store.protocols import JobLedger
from scheduler.metrics import GIVEN_UP, REDRIVEN
from scheduler.relay import first_envelope

_log = get_logger(__name__)


def redrive_stalled(
    ledger: JobLedger,
    publisher: Publisher,
    *,
    idle_s: float,
    max_redrives: int,
    limit: int = 100,
) -> int:
    """Republish the first contract of each stalled job, or fail it after the last try.

    Stops at the first ``TransientError`` (the broker is down: the next tick retries).

    Returns:
        How many jobs were re-driven.
    """
    redriven = 0
    for job in ledger.stalled(idle_s=idle_s, limit=limit):
        envelope = first_envelope(job.job_id, job.contract, job.payload)
        if job.redrives >= max_redrives or envelope is None:
            reason = (
                f"stalled: no progress for {idle_s:g} s after {job.redrives} re-drive(s)"
                if envelope is not None
                else "stalled, and its first contract no longer validates"
            )
            ledger.fail_stalled(job.job_id, error=reason)
            GIVEN_UP.inc()
            _log.error("redrive.gave_up", job_id=job.job_id, reason=reason)
            continue
        try:
            publisher.publish(envelope)
        except TransientError as error:
            _log.warning("redrive.broker_unavailable", job_id=job.job_id, error=str(error))
            return redriven
        ledger.mark_redriven(job.job_id)
        REDRIVEN.inc()
        redriven += 1
        _log.warning(
            "redrive.republished",
            job_id=job.job_id,
            correlation_id=job.correlation_id,
            redrive=job.redrives + 1,
            idle_since=job.updated_at.isoformat(),
        )
    return redriven
