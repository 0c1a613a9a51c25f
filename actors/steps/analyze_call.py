"""Step ``analyze_call``: summarise a call and detect a callback request.

Consumes ``CallTranscribed``; emits one ``CallAnalyzed``.

Idempotent and cheap on replay: when the call was already persisted (its call log
exists), the stored analysis is reused, so a replay or a duplicate delivery does not pay
for the LLM again and cannot change an analysis downstream steps already acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from actors.ports import Analyzer, CallRecords
from contracts import CallAnalysis, CallAnalyzed, CallTranscribed, Contract


def run(
    event: CallTranscribed,
    *,
    analyzer: Analyzer,
    calls: CallRecords,
    now: Callable[[], datetime],
) -> list[Contract]:
    """Analyze the transcript, or reuse the analysis of an already persisted call.

    Args:
        event: The transcribed call.
        analyzer: The LLM (or local) analyzer.
        calls: Persisted call logs, looked up by conversation id.
        now: Returns the current aware UTC time; relative times the caller mentions
            resolve against it when the call's start time is unknown.

    Returns:
        ``[CallAnalyzed]``.

    Raises:
        TransientError: The analyzer or the store could not be reached.
        PermanentError: The analyzer rejected the transcript.
    """
    return [
        CallAnalyzed(
            job_id=event.job_id,
            correlation_id=event.correlation_id,
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            caller_number=event.caller_number,
            transcript=event.transcript,
            analysis=_analysis(event, analyzer=analyzer, calls=calls, now=now),
            started_at=event.started_at,
            duration_secs=event.duration_secs,
            call_status=event.call_status,
        )
    ]


def _analysis(
    event: CallTranscribed,
    *,
    analyzer: Analyzer,
    calls: CallRecords,
    now: Callable[[], datetime],
) -> CallAnalysis:
    stored = calls.get_call_log(event.tenant_id, event.conversation_id)
    if stored is not None:
        return stored.analysis
    return analyzer.analyze(
        event.transcript,
        reference_time=event.started_at or now(),
        timezone=event.timezone,
    )
