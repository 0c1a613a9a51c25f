from __future__ import annotations

import pytest

from actors.steps import fetch_transcript
from contracts import CallTranscribed, TranscriptTurn
from contracts.errors import NotReadyError, PermanentError, TransientError
from contracts.values import ConversationSnapshot
from tests.builders import CONVERSATION_ID, make_post_call_job, make_transcript
from tests.fakes import FakeTranscriptSource


def _snapshot(
    status: str, *, transcript: list[TranscriptTurn] | None = None, duration: int | None = None
) -> ConversationSnapshot:
    return ConversationSnapshot(
        conversation_id=CONVERSATION_ID,
        status=status,
        transcript=transcript or [],
        duration_secs=duration,
    )


def test_an_inline_transcript_is_used_without_fetching() -> None:
    job = make_post_call_job()
    source = FakeTranscriptSource()

    [event] = fetch_transcript.run(job, transcripts=source)

    assert isinstance(event, CallTranscribed)
    assert event.transcript == job.transcript
    assert source.fetches == []
    assert (event.job_id, event.tenant_id, event.conversation_id, event.agent_id) == (
        job.job_id,
        job.tenant_id,
        job.conversation_id,
        job.agent_id,
    )
    assert (event.started_at, event.duration_secs, event.call_status, event.timezone) == (
        job.started_at,
        job.duration_secs,
        job.call_status,
        job.timezone,
    )


@pytest.mark.parametrize("inline", [None, []])
def test_a_missing_or_empty_inline_transcript_is_fetched(
    inline: list[TranscriptTurn] | None,
) -> None:
    source = FakeTranscriptSource()
    source.script(CONVERSATION_ID, _snapshot("done", transcript=make_transcript(), duration=42))

    [event] = fetch_transcript.run(make_post_call_job(transcript=inline), transcripts=source)

    assert isinstance(event, CallTranscribed)
    assert event.transcript == make_transcript()
    assert source.fetches == [CONVERSATION_ID]


def test_a_conversation_still_processing_raises_not_ready_with_its_status() -> None:
    source = FakeTranscriptSource()
    source.script(CONVERSATION_ID, _snapshot("processing"))

    with pytest.raises(NotReadyError, match="processing") as raised:
        fetch_transcript.run(make_post_call_job(transcript=None), transcripts=source)

    assert isinstance(raised.value, TransientError)


def test_a_retry_after_not_ready_succeeds_once_the_conversation_is_done() -> None:
    source = FakeTranscriptSource()
    source.script(
        CONVERSATION_ID,
        _snapshot("processing"),
        _snapshot("done", transcript=make_transcript()),
    )
    job = make_post_call_job(transcript=None)

    with pytest.raises(NotReadyError):
        fetch_transcript.run(job, transcripts=source)
    [event] = fetch_transcript.run(job, transcripts=source)

    assert isinstance(event, CallTranscribed)
    assert len(event.transcript) == len(make_transcript())
    assert source.fetches == [CONVERSATION_ID, CONVERSATION_ID]


def test_a_done_conversation_with_an_empty_transcript_is_a_permanent_error() -> None:
    source = FakeTranscriptSource()
    source.script(CONVERSATION_ID, _snapshot("done"))

    with pytest.raises(PermanentError, match="empty transcript"):
        fetch_transcript.run(make_post_call_job(transcript=None), transcripts=source)


def test_the_duration_comes_from_the_snapshot_when_the_job_has_none() -> None:
    source = FakeTranscriptSource()
    source.script(CONVERSATION_ID, _snapshot("done", transcript=make_transcript(), duration=42))

    [event] = fetch_transcript.run(
        make_post_call_job(transcript=None, duration_secs=None), transcripts=source
    )

    assert isinstance(event, CallTranscribed)
    assert event.duration_secs == 42


def test_the_job_duration_wins_over_the_snapshot_duration() -> None:
    source = FakeTranscriptSource()
    source.script(CONVERSATION_ID, _snapshot("done", transcript=make_transcript(), duration=42))

    [event] = fetch_transcript.run(
        make_post_call_job(transcript=None, duration_secs=95), transcripts=source
    )

    assert isinstance(event, CallTranscribed)
    assert event.duration_secs == 95


def test_an_unknown_conversation_propagates_the_sources_permanent_error() -> None:
    with pytest.raises(PermanentError, match="not found"):
        fetch_transcript.run(
            make_post_call_job(transcript=None), transcripts=FakeTranscriptSource()
        )
