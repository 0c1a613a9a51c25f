"""Rule-based callback detection: did the caller ask to be called back, and when?

A callback is a caller sentence with a request phrase ("call me back", "ring me",
"give me a call", "reach me", "callback"...) that is not negated ("don't call me
back", "no need to call"). Its time is read from that sentence, else from the rest of
the caller's turn, else from the caller's next turn (agent: "When suits you?").

Times resolve against the call's reference time in the tenant's IANA zone, with
``zoneinfo`` doing the DST arithmetic, and come back as aware UTC datetimes:

- relative: "in 2 hours", "in 30 minutes", "in an hour" (absolute offsets);
- day: "today", "tomorrow", "tonight", "this evening", "later today", "next Monday",
  "on Friday", "Friday";
- time of day: "at 5 pm", "at 3:30 pm", "at 10", "noon", or a part of the day
  ("morning" 09:00, "afternoon" 14:00, "evening" 18:00, "tonight" 19:00);
- a bare hour without am/pm is read as business hours (1-7 → pm, 8-11 → am);
- no time at all → the next day at 10:00 local.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts import CallbackRequest, TranscriptTurn
from contracts.errors import PermanentError
from infra.vendors.lexicon import split_sentences

_REQUEST = re.compile(
    r"\b(call\s+(?:me\s+|us\s+)?back|call-?back|ring\s+me|give\s+me\s+a\s+(?:call|ring)"
    r"|reach\s+me|call\s+me\s+(?:later|again|tomorrow|tonight|next|on|at|in|this))\b"
)
_NEGATION = re.compile(
    r"\b(?:don'?t|do\s+not|doesn'?t|no\s+need\s+to|never|not|won'?t\s+need)\b"
    r"(?:\W+\w+){0,3}?\W+(?:call|ring|reach|give\s+me\s+a\s+call|callback)"
)
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_RELATIVE = re.compile(r"\bin\s+(\d+|an?|one|two|three|four|five)\s+(minutes?|mins?|hours?|hrs?)\b")
_CLOCK = re.compile(r"\b(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?!\w)")
_AT_HOUR = re.compile(r"\bat\s+(\d{1,2})(?::(\d{2}))?\b")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY = re.compile(r"\b(?:next\s+|on\s+|this\s+)?(" + "|".join(_WEEKDAYS) + r")\b")
_PERIODS = {"morning": time(9), "afternoon": time(14), "evening": time(18), "tonight": time(19)}
_PERIOD = re.compile(r"\b(morning|afternoon|evening|tonight)\b")
_DEFAULT_TIME = time(10)


@dataclass(frozen=True)
class _Ask:
    sentence: str
    context: tuple[str, ...]


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone called ``name``.

    Raises:
        PermanentError: The zone does not exist (a retry cannot fix a tenant's setting).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PermanentError(f"unknown time zone {name!r}") from exc


def detect_callback(
    transcript: Sequence[TranscriptTurn], *, reference_time: datetime, timezone: str
) -> CallbackRequest | None:
    """Return the callback the caller asked for, or None when they did not ask for one."""
    ask = _find_ask(transcript)
    if ask is None:
        return None
    due_at = resolve_time(ask.context, reference_time=reference_time, zone=zone_of(timezone))
    return CallbackRequest(due_at=due_at, reason=ask.sentence)


def is_request(sentence: str) -> bool:
    """Whether ``sentence`` asks for a callback (and is not a negated one)."""
    text = _normalise(sentence)
    return _REQUEST.search(text) is not None and _NEGATION.search(text) is None


def _find_ask(transcript: Sequence[TranscriptTurn]) -> _Ask | None:
    user_turns = [turn.message for turn in transcript if turn.role == "user"]
    for index, message in enumerate(user_turns):
        sentences = split_sentences(message)
        for position, sentence in enumerate(sentences):
            if is_request(sentence):
                rest = " ".join(sentences[position + 1 :])
                following = user_turns[index + 1] if index + 1 < len(user_turns) else ""
                return _Ask(sentence=sentence, context=(sentence, rest, following))
    return None


def resolve_time(
    candidates: Sequence[str], *, reference_time: datetime, zone: ZoneInfo
) -> datetime:
    """Resolve the first text in ``candidates`` that names a time; default next day 10:00.

    Args:
        candidates: Texts to look in, most specific first.
        reference_time: When the call happened (aware).
        zone: The tenant's zone, in which the caller speaks.

    Returns:
        An aware UTC datetime.
    """
    for text in candidates:
        found = _parse(_normalise(text), reference_time, zone)
        if found is not None:
            return found.astimezone(UTC)
    local_now = reference_time.astimezone(zone)
    return _at(local_now.date() + timedelta(days=1), _DEFAULT_TIME, zone).astimezone(UTC)


def _normalise(text: str) -> str:
    return text.lower().replace("\u2019", "'")


def _parse(text: str, reference_time: datetime, zone: ZoneInfo) -> datetime | None:
    relative = _RELATIVE.search(text)
    if relative is not None:
        amount = _NUMBER_WORDS.get(relative.group(1)) or int(relative.group(1))
        unit = timedelta(hours=1) if relative.group(2).startswith("h") else timedelta(minutes=1)
        # An offset is absolute time: add it in UTC so a DST change cannot stretch it.
        return reference_time.astimezone(UTC) + amount * unit
    local_now = reference_time.astimezone(zone)
    if "later today" in text:
        return local_now + timedelta(hours=2)
    day = _day(text, local_now.date())
    clock = _clock(text)
    if day is None and clock is None:
        return None
    if day is None:
        candidate = _at(local_now.date(), clock or _DEFAULT_TIME, zone)
        return (
            candidate
            if candidate > local_now
            else _at(local_now.date() + timedelta(days=1), clock or _DEFAULT_TIME, zone)
        )
    candidate = _at(day, clock or _DEFAULT_TIME, zone)
    if candidate <= local_now:
        # "this evening" said at 20:00: the period has started, so an hour from now.
        return local_now + timedelta(hours=1)
    return candidate


def _day(text: str, today: date) -> date | None:
    if "tomorrow" in text:
        return today + timedelta(days=1)
    weekday = _WEEKDAY.search(text)
    if weekday is not None:
        ahead = (_WEEKDAYS.index(weekday.group(1)) - today.weekday()) % 7
        return today + timedelta(days=ahead or 7)
    if re.search(r"\b(today|tonight|this\s+(?:morning|afternoon|evening))\b", text):
        return today
    return None


def _clock(text: str) -> time | None:
    explicit = _CLOCK.search(text)
    if explicit is not None:
        hour = int(explicit.group(1)) % 12
        if explicit.group(3).startswith("p"):
            hour += 12
        return _time(hour, explicit.group(2))
    if re.search(r"\bnoon\b", text):
        return time(12)
    period = _PERIOD.search(text)
    at_hour = _AT_HOUR.search(text)
    if at_hour is not None:
        hour = int(at_hour.group(1))
        afternoon = period is not None and period.group(1) != "morning"
        if hour < 12 and (afternoon or (period is None and 1 <= hour <= 7)):
            hour += 12
        return _time(hour, at_hour.group(2))
    return _PERIODS[period.group(1)] if period is not None else None


def _time(hour: int, minute: str | None) -> time | None:
    minutes = int(minute) if minute else 0
    if not (0 <= hour <= 23 and 0 <= minutes <= 59):
        return None
    return time(hour, minutes)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    # combine + tzinfo lets zoneinfo pick the right offset for that date (DST-correct).
    return datetime.combine(day, clock, tzinfo=zone)
