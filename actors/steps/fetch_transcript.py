"""Step ``fetch_transcript``: make sure a finished call has its whole transcript.

Consumes ``PostCallJobData``; emits one ``CallTranscribed``.

A non-empty transcript carried by the webhook is used as is. Otherwise the conversation
is fetched from the voice platform: while it is still processing the step raises
``NotReadyError`` (a transient error, so the bus retries it with exponential backoff
instead of a blind fixed delay); a finished conversation without a transcript is a
``PermanentError``.

Idempotent: the step has no side effect; every delivery of the same job emits the
same event.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors.ports import TranscriptSource
from contracts import CallTranscribed, Contract, PostCallJobData, TranscriptTurn
from contracts.errors import NotReadyError, PermanentError


def run(job: PostCallJobData, *, transcripts: TranscriptSource) -> list[Contract]:
    """Emit the call's transcript, fetching it when the webhook did not carry it.

    Args:
        job: The post-call job.
        transcripts: The voice platform's conversations.

    Returns:
        ``[CallTranscribed]``.

    Raises:
        NotReadyError: The conversation is not ``done`` yet (retried with backoff).
        PermanentError: The finished conversation has no transcript, or the platform
            says it does not exist.
        TransientError: The platform could not be reached.
    """
    if job.transcript:
        return [_transcribed(job, job.transcript, job.duration_secs)]
    snapshot = transcripts.fetch(job.conversation_id)
    if not snapshot.is_done:
        raise NotReadyError(
            f"conversation {job.conversation_id} is {snapshot.status!r}, not 'done' yet"
        )
    if not snapshot.transcript:
        raise PermanentError(
            f"conversation {job.conversation_id} is done but has an empty transcript"
        )
    duration = job.duration_secs if job.duration_secs is not None else snapshot.duration_secs
    return [_transcribed(job, snapshot.transcript, duration)]


def _transcribed(
    job: PostCallJobData, transcript: Sequence[TranscriptTurn], duration_secs: int | None
) -> CallTranscribed:
    return CallTranscribed(
        job_id=job.job_id,
        correlation_id=job.correlation_id,
        tenant_id=job.tenant_id,
        conversation_id=job.conversation_id,
        agent_id=job.agent_id,
        caller_number=job.caller_number,
        transcript=list(transcript),
        started_at=job.started_at,
        duration_secs=duration_secs,
        call_status=job.call_status,
        timezone=job.timezone,
    )
