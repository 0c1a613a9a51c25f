from __future__ import annotations

from datetime import UTC, datetime

from actors.steps import analyze_call
from contracts import CallAnalyzed
from contracts.values import CallLogEntry
from tests.builders import (
    STARTED_AT,
    make_analysis,
    make_callback,
    make_transcribed,
)
from tests.fakes import FixedAnalyzer, FixedClock, InMemoryCallStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_new_call_is_analyzed_against_its_start_time_and_time_zone() -> None:
    analysis = make_analysis(callback=make_callback())
    analyzer = FixedAnalyzer(analysis)
    event = make_transcribed()

    [result] = analyze_call.run(
        event, analyzer=analyzer, calls=InMemoryCallStore(), now=FixedClock(NOW)
    )

    assert isinstance(result, CallAnalyzed)
    assert result.analysis == analysis
    assert analyzer.calls == [(event.transcript, STARTED_AT, "Europe/London")]
    assert result.transcript == event.transcript
    assert (result.job_id, result.tenant_id, result.conversation_id, result.agent_id) == (
        event.job_id,
        event.tenant_id,
        event.conversation_id,
        event.agent_id,
    )
    assert (result.started_at, result.duration_secs, result.call_status) == (
        event.started_at,
        event.duration_secs,
        event.call_status,
    )


def test_a_call_without_a_start_time_is_analyzed_against_now() -> None:
    analyzer = FixedAnalyzer(make_analysis())

    analyze_call.run(
        make_transcribed(started_at=None),
        analyzer=analyzer,
        calls=InMemoryCallStore(),
        now=FixedClock(NOW),
    )

    assert [reference for _, reference, _ in analyzer.calls] == [NOW]


def test_a_replay_of_a_persisted_call_reuses_the_stored_analysis_without_the_analyzer() -> None:
    event = make_transcribed()
    stored = make_analysis(summary="Stored earlier.", analyzer="openai:gpt-4o-mini")
    calls = InMemoryCallStore()
    calls.save_call_log(
        CallLogEntry(
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            job_id=event.job_id,
            analysis=stored,
        )
    )
    analyzer = FixedAnalyzer(make_analysis(summary="A fresh, different analysis."))

    [result] = analyze_call.run(event, analyzer=analyzer, calls=calls, now=FixedClock(NOW))

    assert isinstance(result, CallAnalyzed)
    assert result.analysis == stored
    assert analyzer.call_count == 0


def test_another_conversations_call_log_does_not_stop_the_analysis() -> None:
    calls = InMemoryCallStore()
    other = make_transcribed(conversation_id="conv_other")
    calls.save_call_log(
        CallLogEntry(
            tenant_id=other.tenant_id,
            conversation_id=other.conversation_id,
            agent_id=other.agent_id,
            job_id=other.job_id,
            analysis=make_analysis(summary="Someone else's call."),
        )
    )
    analyzer = FixedAnalyzer(make_analysis())

    [result] = analyze_call.run(
        make_transcribed(), analyzer=analyzer, calls=calls, now=FixedClock(NOW)
    )

    assert isinstance(result, CallAnalyzed)
    assert result.analysis == make_analysis()
    assert analyzer.call_count == 1
