"""Callback detection and time resolution of the local analyzer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import TranscriptTurn
from contracts.errors import PermanentError
from infra.vendors.callback_times import detect_callback, is_request

NY = "America/New_York"
# Saturday 7 March 2026 15:00 EST (20:00 UTC); clocks go forward at 02:00 on the 8th.
BEFORE_DST = datetime(2026, 3, 7, 20, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ask(message: str, *, reference: datetime = BEFORE_DST, zone: str = NY) -> datetime | None:
    transcript = [
        TranscriptTurn(role="agent", message="Anything else I can do?"),
        TranscriptTurn(role="user", message=message),
    ]
    found = detect_callback(transcript, reference_time=reference, timezone=zone)
    return None if found is None else found.due_at


@pytest.mark.parametrize(
    ("message", "expected_utc"),
    [
        # 17:00 EDT after the change: 21:00 UTC, not the 22:00 a fixed offset would give.
        ("Can you call me back tomorrow at 5 pm?", utc(2026, 3, 8, 21, 0)),
        ("Please call me back tomorrow morning.", utc(2026, 3, 8, 13, 0)),
        ("Give me a call tomorrow afternoon.", utc(2026, 3, 8, 18, 0)),
        ("Ring me tomorrow evening.", utc(2026, 3, 8, 22, 0)),
        ("Call me back in 2 hours.", utc(2026, 3, 7, 22, 0)),
        ("Could you call back in 30 minutes?", utc(2026, 3, 7, 20, 30)),
        ("Reach me next Monday.", utc(2026, 3, 9, 14, 0)),
        ("Give me a call on Friday at 10.", utc(2026, 3, 13, 14, 0)),
        ("Call me back at 3:30 pm.", utc(2026, 3, 7, 20, 30)),
        ("Call me back later today.", utc(2026, 3, 7, 22, 0)),
        ("I'd like a callback this evening.", utc(2026, 3, 7, 23, 0)),
        ("Please call me back.", utc(2026, 3, 8, 14, 0)),
    ],
)
def test_callback_phrasings_resolve_in_the_callers_zone(
    message: str, expected_utc: datetime
) -> None:
    assert ask(message) == expected_utc


def test_in_two_hours_across_the_dst_jump_is_two_real_hours() -> None:
    # 01:30 EST on 8 March; two hours later is 04:30 EDT (the 02:00-03:00 hour is skipped).
    reference = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)

    assert ask("Call me back in 2 hours.", reference=reference) == datetime(
        2026, 3, 8, 8, 30, tzinfo=UTC
    )


def test_a_time_given_in_the_callers_next_turn_is_used() -> None:
    transcript = [
        TranscriptTurn(role="user", message="I'm driving, can you call me back?"),
        TranscriptTurn(role="agent", message="Sure, when suits you?"),
        TranscriptTurn(role="user", message="Tomorrow at 9 am works."),
    ]

    found = detect_callback(transcript, reference_time=BEFORE_DST, timezone=NY)

    assert found is not None
    assert found.due_at == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert found.reason == "I'm driving, can you call me back?"


@pytest.mark.parametrize(
    "message",
    [
        "Don't call me back, I'm all set.",
        "Please do not call me back.",
        "There's no need to call me back.",
        "You never call back anyway.",
        "Thanks, the issue is fixed.",
    ],
)
def test_negated_or_absent_requests_are_not_callbacks(message: str) -> None:
    assert not is_request(message)
    assert ask(message) is None


def test_only_the_callers_turns_can_ask_for_a_callback() -> None:
    transcript = [TranscriptTurn(role="agent", message="We will call you back tomorrow.")]

    assert detect_callback(transcript, reference_time=BEFORE_DST, timezone=NY) is None


def test_an_unknown_time_zone_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError):
        ask("Call me back tomorrow.", zone="Mars/Olympus_Mons")


def test_a_reference_time_in_another_zone_is_read_in_the_tenants_zone() -> None:
    # 23:30 UTC on 7 March is still the 7th in New York: "tomorrow" is the 8th.
    reference = datetime(2026, 3, 7, 23, 30, tzinfo=UTC)

    assert ask("Call me back tomorrow at noon.", reference=reference) == datetime(
        2026, 3, 8, 16, 0, tzinfo=UTC
    )
