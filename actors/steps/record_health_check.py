"""Step ``record_health_check``: persist a health-check call's answers, then clean up.

Consumes ``HealthCheckJobData``; emits nothing (the whole health-check pipeline).

The live-call service leaves the call's answers in a checkpoint thread. The step saves
them (an upsert keyed by conversation and question) and only THEN deletes the
checkpoint, so a crash between the two leaves the checkpoint in place and the retry
saves the same answers again before deleting it.

Idempotent: when the checkpoint is gone but the conversation's answers are already
persisted, the delivery is a replay and does nothing.
"""

from __future__ import annotations

from actors.ports import CheckpointReader, HealthRecords
from contracts import Contract, HealthCheckJobData
from contracts.errors import PermanentError


def run(
    job: HealthCheckJobData, *, checkpoints: CheckpointReader, health: HealthRecords
) -> list[Contract]:
    """Save the checkpoint's answers, then delete the checkpoint thread.

    Args:
        job: The health-check job.
        checkpoints: The live-call service's checkpoint state.
        health: Persisted health-check answers.

    Returns:
        ``[]``.

    Raises:
        PermanentError: There is no checkpoint and no saved answers (the live-call
            service did not write it, or it expired), or the checkpoint is unreadable.
        TransientError: The checkpoint store or the database could not be reached.
    """
    answers = checkpoints.read_answers(job.thread_id)
    if answers is None:
        if health.has_health_answers(job.tenant_id, job.conversation_id):
            return []
        raise PermanentError(
            f"no checkpoint state for thread {job.thread_id} (conversation "
            f"{job.conversation_id}) — the live-call service did not write it, or it expired"
        )
    health.save_health_answers(
        tenant_id=job.tenant_id, conversation_id=job.conversation_id, answers=answers
    )
    checkpoints.delete(job.thread_id)
    return []
