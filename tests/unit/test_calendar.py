"""The daily-call time math of ``infra.calendar``: instants, DST, next calls, retries, slots.

Every expected instant below was worked out by hand from the zone's offset on that date
(and checked against the tz database), so a table row reads as the rule it pins.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from infra.calendar import CallSchedule, DueCall, next_call, retry_at, slot_of, slots_to_emit

GRACE = timedelta(minutes=30)
EVERY = timedelta(minutes=5)
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    """An aware UTC datetime: ``utc(2026, 3, 10, 8, 5)``."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(
    zone: str,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    """A wall-clock time in ``zone`` (``fold=1``: the second of a repeated hour), in UTC.

    In UTC so that adding a delay adds elapsed time: arithmetic on a ``ZoneInfo``-aware
    datetime is wall-clock arithmetic, an hour off across a DST change.
    """
    wall = datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone), fold=fold)
    return wall.astimezone(UTC)


# --- CallSchedule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "call_time", "local_date", "expected"),
    [
        pytest.param("UTC", time(8), date(2026, 3, 10), utc(2026, 3, 10, 8), id="utc"),
        pytest.param(
            "Asia/Kolkata", time(8), date(2026, 3, 10), utc(2026, 3, 10, 2, 30), id="kolkata"
        ),
        pytest.param(
            "Asia/Kolkata",
            time(3),
            date(2026, 3, 10),
            utc(2026, 3, 9, 21, 30),
            id="kolkata-early-morning-is-the-previous-utc-date",
        ),
        pytest.param(NEW_YORK, time(8), date(2026, 1, 15), utc(2026, 1, 15, 13), id="ny-est"),
        pytest.param(NEW_YORK, time(8), date(2026, 7, 15), utc(2026, 7, 15, 12), id="ny-edt"),
        pytest.param(
            "Europe/London", time(8), date(2026, 1, 15), utc(2026, 1, 15, 8), id="london-gmt"
        ),
        pytest.param(
            "Europe/London", time(8), date(2026, 7, 15), utc(2026, 7, 15, 7), id="london-bst"
        ),
        pytest.param(
            LORD_HOWE, time(9), date(2026, 1, 15), utc(2026, 1, 14, 22), id="lord-howe-summer+11"
        ),
        pytest.param(
            LORD_HOWE,
            time(9),
            date(2026, 7, 15),
            utc(2026, 7, 14, 22, 30),
            id="lord-howe-winter+10:30",
        ),
        pytest.param(
            "Pacific/Kiritimati",
            time(8),
            date(2026, 3, 10),
            utc(2026, 3, 9, 18),
            id="kiritimati+14-is-the-previous-utc-date",
        ),
        pytest.param(
            "Pacific/Pago_Pago",
            time(20),
            date(2026, 3, 10),
            utc(2026, 3, 11, 7),
            id="pago-pago-11-is-the-next-utc-date",
        ),
    ],
)
def test_instant_is_the_call_time_on_the_local_date_in_utc(
    zone: str, call_time: time, local_date: date, expected: datetime
) -> None:
    schedule = CallSchedule.of(call_time, zone)

    at = schedule.instant(local_date)

    assert at == expected
    assert at.tzinfo is UTC
    assert at.astimezone(ZoneInfo(zone)).time() == call_time
    assert schedule.local_date(at) == local_date


@pytest.mark.parametrize(
    ("zone", "call_time", "local_date", "expected", "wall_clock"),
    [
        pytest.param(
            NEW_YORK,
            time(2, 30),
            date(2026, 3, 8),
            utc(2026, 3, 8, 7, 30),
            time(3, 30),
            id="new-york-02:30-is-03:30-edt",
        ),
        pytest.param(
            NEW_YORK,
            time(2),
            date(2026, 3, 8),
            utc(2026, 3, 8, 7),
            time(3),
            id="new-york-02:00-is-03:00-edt",
        ),
        pytest.param(
            "Europe/London",
            time(1, 30),
            date(2026, 3, 29),
            utc(2026, 3, 29, 1, 30),
            time(2, 30),
            id="london-01:30-is-02:30-bst",
        ),
        pytest.param(
            LORD_HOWE,
            time(2, 15),
            date(2026, 10, 4),
            utc(2026, 10, 3, 15, 45),
            time(2, 45),
            id="lord-howe-half-hour-gap-02:15-is-02:45",
        ),
    ],
)
def test_a_call_time_in_a_spring_forward_gap_comes_one_gap_later_by_the_clock(
    zone: str, call_time: time, local_date: date, expected: datetime, wall_clock: time
) -> None:
    schedule = CallSchedule.of(call_time, zone)

    at = schedule.instant(local_date)

    assert at == expected
    assert at.astimezone(schedule.zone).time() == wall_clock
    assert schedule.local_date(at) == local_date
    # Read with the offset before the jump: as long after local midnight as on any day.
    midnight = datetime.combine(local_date, time(0), tzinfo=schedule.zone)
    since_midnight = timedelta(hours=call_time.hour, minutes=call_time.minute)
    assert at - midnight.astimezone(UTC) == since_midnight


@pytest.mark.parametrize(
    ("zone", "call_time", "local_date", "expected", "fold_length"),
    [
        pytest.param(
            NEW_YORK,
            time(1, 30),
            date(2026, 11, 1),
            utc(2026, 11, 1, 5, 30),
            timedelta(hours=1),
            id="new-york-01:30-edt",
        ),
        pytest.param(
            "Europe/London",
            time(1, 30),
            date(2026, 10, 25),
            utc(2026, 10, 25, 0, 30),
            timedelta(hours=1),
            id="london-01:30-bst",
        ),
        pytest.param(
            LORD_HOWE,
            time(1, 45),
            date(2026, 4, 5),
            utc(2026, 4, 4, 14, 45),
            timedelta(minutes=30),
            id="lord-howe-half-hour-fold-01:45+11",
        ),
    ],
)
def test_a_call_time_in_a_fall_back_fold_is_its_first_occurrence(
    zone: str, call_time: time, local_date: date, expected: datetime, fold_length: timedelta
) -> None:
    schedule = CallSchedule.of(call_time, zone)

    at = schedule.instant(local_date)

    assert at == expected
    # The same wall-clock time comes again one fold later: that one is never used.
    second = (at + fold_length).astimezone(schedule.zone)
    assert second.time() == call_time
    assert second.fold == 1
    assert at.astimezone(schedule.zone).fold == 0


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Pacific/Kiritimati", date(2026, 3, 11)),
        ("Asia/Kolkata", date(2026, 3, 10)),
        ("UTC", date(2026, 3, 10)),
        ("Pacific/Pago_Pago", date(2026, 3, 10)),
        ("America/New_York", date(2026, 3, 10)),
    ],
)
def test_local_date_is_the_date_on_the_users_wall_clock(zone: str, expected: date) -> None:
    assert CallSchedule.of(time(8), zone).local_date(utc(2026, 3, 10, 12)) == expected


def test_local_dates_across_the_date_line_are_two_days_apart_at_one_instant() -> None:
    moment = utc(2026, 3, 10, 10, 30)

    kiritimati = CallSchedule.of(time(8), "Pacific/Kiritimati").local_date(moment)
    pago_pago = CallSchedule.of(time(8), "Pacific/Pago_Pago").local_date(moment)

    assert (kiritimati, pago_pago) == (date(2026, 3, 11), date(2026, 3, 9))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(time(8), time(12), (time(8), time(12)), id="both-ends"),
        pytest.param(time(0), time(9), (time(0), time(9)), id="midnight-start-is-a-window"),
        pytest.param(time(8), None, None, id="start-only"),
        pytest.param(None, time(12), None, id="end-only"),
        pytest.param(None, None, None, id="none"),
    ],
)
def test_a_schedule_has_a_window_only_with_both_ends(
    start: time | None, end: time | None, expected: tuple[time, time] | None
) -> None:
    assert CallSchedule.of(time(8), "UTC", start, end).window == expected


# --- next_call ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "call_time", "after", "now", "expected"),
    [
        pytest.param(
            "Asia/Kolkata",
            time(8),
            None,
            local("Asia/Kolkata", 2026, 3, 10, 7),
            DueCall(utc(2026, 3, 10, 2, 30), date(2026, 3, 10)),
            id="created-before-the-call-time-today",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            None,
            local("Asia/Kolkata", 2026, 3, 10, 8, 1),
            DueCall(utc(2026, 3, 10, 2, 30), date(2026, 3, 10)),
            id="created-one-minute-after-still-today",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            None,
            local("Asia/Kolkata", 2026, 3, 10, 8, 30),
            DueCall(utc(2026, 3, 10, 2, 30), date(2026, 3, 10)),
            id="created-exactly-the-grace-after-still-today",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            None,
            local("Asia/Kolkata", 2026, 3, 10, 8, 30, 1),
            DueCall(utc(2026, 3, 11, 2, 30), date(2026, 3, 11)),
            id="created-a-second-past-the-grace-tomorrow",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            None,
            local("Asia/Kolkata", 2026, 3, 10, 15),
            DueCall(utc(2026, 3, 11, 2, 30), date(2026, 3, 11)),
            id="created-hours-after-tomorrow",
        ),
        pytest.param(
            NEW_YORK,
            time(0, 5),
            None,
            local(NEW_YORK, 2026, 3, 10, 23, 58),
            DueCall(utc(2026, 3, 11, 4, 5), date(2026, 3, 11)),
            id="created-just-before-midnight-call-just-after",
        ),
        pytest.param(
            NEW_YORK,
            time(23, 55),
            None,
            local(NEW_YORK, 2026, 3, 11, 0, 10),
            DueCall(utc(2026, 3, 11, 3, 55), date(2026, 3, 10)),
            id="created-just-after-midnight-call-just-before-is-yesterdays-call",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            date(2026, 3, 10),
            local("Asia/Kolkata", 2026, 3, 10, 8, 1),
            DueCall(utc(2026, 3, 11, 2, 30), date(2026, 3, 11)),
            id="after-today-tomorrow",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            date(2026, 3, 9),
            local("Asia/Kolkata", 2026, 3, 10, 7),
            DueCall(utc(2026, 3, 10, 2, 30), date(2026, 3, 10)),
            id="after-yesterday-today",
        ),
        pytest.param(
            "Asia/Kolkata",
            time(8),
            date(2026, 3, 15),
            local("Asia/Kolkata", 2026, 3, 10, 7),
            DueCall(utc(2026, 3, 16, 2, 30), date(2026, 3, 16)),
            id="after-in-the-future-the-day-after-it",
        ),
        pytest.param(
            NEW_YORK,
            time(2, 30),
            None,
            local(NEW_YORK, 2026, 3, 8, 1),
            DueCall(utc(2026, 3, 8, 7, 30), date(2026, 3, 8)),
            id="spring-forward-night-gap-time",
        ),
        pytest.param(
            NEW_YORK,
            time(1, 30),
            None,
            local(NEW_YORK, 2026, 11, 1, 1),
            DueCall(utc(2026, 11, 1, 5, 30), date(2026, 11, 1)),
            id="fall-back-night-before-the-first-occurrence",
        ),
        pytest.param(
            NEW_YORK,
            time(1, 30),
            None,
            local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1),
            DueCall(utc(2026, 11, 2, 6, 30), date(2026, 11, 2)),
            id="fall-back-night-between-the-occurrences-never-the-second",
        ),
        pytest.param(
            "Pacific/Kiritimati",
            time(8),
            None,
            utc(2026, 3, 9, 17, 50),
            DueCall(utc(2026, 3, 9, 18), date(2026, 3, 10)),
            id="kiritimati-local-date-ahead-of-utc",
        ),
        pytest.param(
            "Pacific/Pago_Pago",
            time(20),
            None,
            utc(2026, 3, 11, 6, 45),
            DueCall(utc(2026, 3, 11, 7), date(2026, 3, 10)),
            id="pago-pago-local-date-behind-utc",
        ),
        pytest.param(
            LORD_HOWE,
            time(2, 15),
            None,
            local(LORD_HOWE, 2026, 10, 4, 1, 30),
            DueCall(utc(2026, 10, 3, 15, 45), date(2026, 10, 4)),
            id="lord-howe-half-hour-gap",
        ),
    ],
)
def test_next_call_for_a_new_or_changed_user(
    zone: str, call_time: time, after: date | None, now: datetime, expected: DueCall
) -> None:
    schedule = CallSchedule.of(call_time, zone)

    due = next_call(schedule, after=after, not_before=now - GRACE)

    assert due == expected
    assert due.at.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "call_time"),
    [
        pytest.param(NEW_YORK, time(2, 30), id="new-york-gap-time"),
        pytest.param(NEW_YORK, time(1, 30), id="new-york-fold-time"),
        pytest.param("Europe/London", time(1, 30), id="london-gap-and-fold-time"),
        pytest.param(LORD_HOWE, time(2, 15), id="lord-howe-gap-time"),
        pytest.param(LORD_HOWE, time(1, 45), id="lord-howe-fold-time"),
        pytest.param("Asia/Kolkata", time(23, 55), id="kolkata-late-evening"),
        pytest.param("Pacific/Kiritimati", time(0, 5), id="kiritimati-after-midnight"),
        pytest.param("Pacific/Pago_Pago", time(20), id="pago-pago-evening"),
    ],
)
def test_a_year_of_ticks_calls_every_local_date_exactly_once(zone: str, call_time: time) -> None:
    """Drive ``next_call`` as a tick does: at the first slot at or after each call."""
    schedule = CallSchedule.of(call_time, zone)
    new_year = datetime(2026, 1, 1, tzinfo=schedule.zone)
    due = next_call(schedule, after=None, not_before=new_year)
    called: list[date] = []
    while due.local_date.year == 2026:
        called.append(due.local_date)
        slot = slot_of(due.at + EVERY - timedelta(seconds=1), EVERY)
        assert due.at <= slot < due.at + EVERY
        following = next_call(schedule, after=due.local_date, not_before=slot - GRACE)
        assert following.at > due.at
        due = following

    assert called == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]


def test_a_change_of_zone_after_the_call_never_calls_that_local_date_again() -> None:
    # Called at 08:00 in Kolkata (02:30 UTC), then moved to New York half an hour later,
    # where it is still the evening before: the next call is on a later date.
    called = CallSchedule.of(time(8), "Asia/Kolkata").instant(date(2026, 3, 10))
    moved = CallSchedule.of(time(8), NEW_YORK)
    now = called + timedelta(minutes=30)

    due = next_call(moved, after=date(2026, 3, 10), not_before=now - GRACE)

    assert due == DueCall(utc(2026, 3, 11, 12), date(2026, 3, 11))


def test_a_change_of_zone_east_with_the_new_zones_date_of_the_last_call_skips_that_date() -> None:
    # Called at 20:00 in Los Angeles (03:00 UTC, already 12:00 of the next day in Tokyo),
    # then moved to Tokyo with a 13:00 call time: given the last call's date in the new
    # zone, the next call is the day after, not an hour later on the same Tokyo date.
    called = CallSchedule.of(time(20), "America/Los_Angeles").instant(date(2026, 3, 10))
    tokyo = CallSchedule.of(time(13), "Asia/Tokyo")
    now = called + timedelta(minutes=10)

    due = next_call(tokyo, after=tokyo.local_date(called), not_before=now - GRACE)

    assert tokyo.local_date(called) == date(2026, 3, 11)
    assert due == DueCall(utc(2026, 3, 12, 4), date(2026, 3, 12))


# --- retry_at -----------------------------------------------------------------------------

_WINDOWED = CallSchedule.of(time(8), NEW_YORK, time(8), time(12))
_ALL_DAY = CallSchedule.of(time(23), NEW_YORK)
_MARCH_10 = date(2026, 3, 10)  # EDT, UTC-4


@pytest.mark.parametrize(
    ("schedule", "local_date", "ended_at", "delay", "expected"),
    [
        pytest.param(
            _WINDOWED,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 8, 5),
            timedelta(minutes=30),
            utc(2026, 3, 10, 12, 35),
            id="inside-the-window",
        ),
        pytest.param(
            _WINDOWED,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 11, 30),
            timedelta(minutes=30),
            utc(2026, 3, 10, 16),
            id="at-the-window-end",
        ),
        pytest.param(
            _WINDOWED,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 11, 31),
            timedelta(minutes=30),
            None,
            id="a-minute-past-the-window-end",
        ),
        pytest.param(
            _WINDOWED,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 14),
            timedelta(minutes=30),
            None,
            id="hours-past-the-window-end",
        ),
        pytest.param(
            _WINDOWED,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 6),
            timedelta(minutes=30),
            utc(2026, 3, 10, 12),
            id="before-the-window-start-moved-to-the-start",
        ),
        pytest.param(
            _ALL_DAY,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 23, 40),
            timedelta(minutes=30),
            None,
            id="crossing-local-midnight",
        ),
        pytest.param(
            _ALL_DAY,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 23),
            timedelta(minutes=30),
            utc(2026, 3, 11, 3, 30),
            id="no-window-late-evening",
        ),
        pytest.param(
            _ALL_DAY,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 23, 29, 59),
            timedelta(minutes=30),
            utc(2026, 3, 11, 3, 59, 59),
            id="no-window-last-second-of-the-day",
        ),
        pytest.param(
            _ALL_DAY,
            _MARCH_10,
            local(NEW_YORK, 2026, 3, 10, 23, 30),
            timedelta(minutes=30),
            None,
            id="no-window-midnight-is-the-next-day",
        ),
        pytest.param(
            CallSchedule.of(time(3), NEW_YORK, time(2, 30), time(6)),
            date(2026, 3, 8),
            local(NEW_YORK, 2026, 3, 8, 1),
            timedelta(minutes=30),
            utc(2026, 3, 8, 7, 30),
            id="window-start-in-a-spring-forward-gap",
        ),
        pytest.param(
            CallSchedule.of(time(8), "Pacific/Kiritimati", time(8), time(10)),
            date(2026, 3, 10),
            utc(2026, 3, 9, 18, 10),
            timedelta(minutes=30),
            utc(2026, 3, 9, 18, 40),
            id="kiritimati-retry-on-the-previous-utc-date",
        ),
    ],
)
def test_retry_at(
    schedule: CallSchedule,
    local_date: date,
    ended_at: datetime,
    delay: timedelta,
    expected: datetime | None,
) -> None:
    assert retry_at(schedule, local_date=local_date, ended_at=ended_at, delay=delay) == expected


def test_a_retry_stays_on_its_local_date_and_in_its_window() -> None:
    for minutes in range(0, 24 * 60, 7):
        ended = local(NEW_YORK, 2026, 3, 10) + timedelta(minutes=minutes)
        at = retry_at(_WINDOWED, local_date=_MARCH_10, ended_at=ended, delay=timedelta(hours=1))
        if at is None:
            continue
        wall = at.astimezone(_WINDOWED.zone)
        assert wall.date() == _MARCH_10
        assert time(8) <= wall.time() <= time(12)
        assert at >= ended + timedelta(hours=1)


# --- slots --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "every", "expected"),
    [
        pytest.param(utc(2026, 3, 10, 8, 7, 31), EVERY, utc(2026, 3, 10, 8, 5), id="inside"),
        pytest.param(utc(2026, 3, 10, 8, 5), EVERY, utc(2026, 3, 10, 8, 5), id="on-the-slot"),
        pytest.param(
            utc(2026, 3, 10, 8, 4, 59, 999_999), EVERY, utc(2026, 3, 10, 8), id="just-before"
        ),
        pytest.param(utc(2026, 3, 10, 8, 59), timedelta(hours=1), utc(2026, 3, 10, 8), id="hourly"),
        pytest.param(
            utc(2026, 3, 10, 0, 14), timedelta(minutes=15), utc(2026, 3, 10), id="midnight"
        ),
        pytest.param(
            local("Asia/Kolkata", 2026, 3, 10, 13, 37),
            EVERY,
            utc(2026, 3, 10, 8, 5),
            id="aware-non-utc-input-aligned-on-utc",
        ),
        pytest.param(
            local("Asia/Kolkata", 2026, 3, 10, 13, 37),
            timedelta(hours=1),
            utc(2026, 3, 10, 8),
            id="hourly-slots-are-utc-hours-not-local-ones",
        ),
    ],
)
def test_slot_of_is_the_utc_multiple_at_or_before(
    moment: datetime, every: timedelta, expected: datetime
) -> None:
    slot = slot_of(moment, every)

    assert slot == expected
    assert slot.tzinfo is UTC


_NOW = utc(2026, 3, 10, 8, 7)


def _every_five(first: datetime, last: datetime) -> list[datetime]:
    count = int((last - first) / EVERY) + 1
    return [first + n * EVERY for n in range(count)]


@pytest.mark.parametrize(
    ("last", "now", "expected", "skipped"),
    [
        pytest.param(None, _NOW, [utc(2026, 3, 10, 8, 5)], 0, id="first-run-current-slot-only"),
        pytest.param(utc(2026, 3, 10, 8), _NOW, [utc(2026, 3, 10, 8, 5)], 0, id="no-gap"),
        pytest.param(utc(2026, 3, 10, 8, 5), _NOW, [], 0, id="current-slot-already-emitted"),
        pytest.param(
            utc(2026, 3, 10, 7, 50),
            _NOW,
            _every_five(utc(2026, 3, 10, 7, 55), utc(2026, 3, 10, 8, 5)),
            0,
            id="missed-slots-within-grace",
        ),
        pytest.param(
            utc(2026, 3, 9, 8),
            _NOW,
            _every_five(utc(2026, 3, 10, 7, 40), utc(2026, 3, 10, 8, 5)),
            24 * 12 + 1 - 6,
            id="long-downtime-only-the-last-grace-window",
        ),
        pytest.param(
            utc(2026, 3, 10, 7),
            utc(2026, 3, 10, 8),
            _every_five(utc(2026, 3, 10, 7, 30), utc(2026, 3, 10, 8)),
            5,
            id="now-on-a-slot-the-grace-edge-is-emitted",
        ),
        pytest.param(utc(2026, 3, 10, 9), _NOW, [], 0, id="last-slot-in-the-future"),
    ],
)
def test_slots_to_emit(
    last: datetime | None, now: datetime, expected: list[datetime], skipped: int
) -> None:
    assert slots_to_emit(last, now, every=EVERY, grace=GRACE) == (expected, skipped)


@pytest.mark.parametrize("downtime_min", [0, 4, 5, 29, 30, 31, 59, 60, 61, 24 * 60 + 3])
def test_slots_emitted_and_skipped_add_up_to_the_slots_since_the_last(downtime_min: int) -> None:
    last = utc(2026, 3, 10, 8)
    now = last + timedelta(minutes=downtime_min, seconds=17)

    slots, skipped = slots_to_emit(last, now, every=EVERY, grace=GRACE)

    assert len(slots) + skipped == (slot_of(now, EVERY) - last) // EVERY
    assert slots == sorted(slots)
    assert all(slot > last and slot >= now - GRACE for slot in slots)
    assert all(slot == slot_of(slot, EVERY) for slot in slots)
    if slots:
        assert slots[-1] == slot_of(now, EVERY)


def test_slots_after_a_change_of_tick_interval_are_aligned_and_reach_the_current_slot() -> None:
    # The last slot was emitted with 5-minute ticks; the scheduler now ticks every 15.
    every = timedelta(minutes=15)

    slots, _ = slots_to_emit(
        utc(2026, 3, 10, 8, 5), utc(2026, 3, 10, 8, 31), every=every, grace=GRACE
    )

    assert slots == [utc(2026, 3, 10, 8, 15), utc(2026, 3, 10, 8, 30)]
