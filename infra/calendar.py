"""Daily-call times: a user's local call time as a UTC instant, DST included.

Every user row keeps ``next_call_at`` — the UTC instant of their next call — so a tick
selects ``next_call_at <= slot`` on an index and never looks at the users who are not
due. This module computes those instants; it does no I/O.

The rules, each tested:

- A call time inside a spring-forward gap (02:30 on a night the clock jumps from 02:00
  to 03:00) does not exist; it is read with the offset before the jump (``fold=0``), so
  the call comes one gap later by the clock (03:30), the same time after midnight as
  on any other day.
- A call time inside a fall-back fold (01:30 twice) is called at its first occurrence.
- A user is never called twice for one local date: the next call is always on a date
  after the last one called (or missed), in the user's zone at that moment.
- A user created or changed after today's call time is still called today when the
  time is less than the grace window ago (the next tick picks them up), and first
  called tomorrow otherwise.
- Retries of a failed call stay on the same local date and inside the calling window
  (the whole local day when there is none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_DAY = timedelta(days=1)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name``, cached (ZoneInfo keeps only 8, and a tick meets hundreds)."""
    return ZoneInfo(name)


_END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class CallSchedule:
    """When one user is called: a local wall-clock time in their zone.

    Attributes:
        call_time: The local call time.
        zone: The user's time zone.
        window: The local calling window (start, end) retries must fall in, if any.
    """

    call_time: time
    zone: ZoneInfo
    window: tuple[time, time] | None = None

    @classmethod
    def of(
        cls,
        call_time: time,
        zone_name: str,
        window_start: time | None = None,
        window_end: time | None = None,
    ) -> CallSchedule:
        """Build one from stored values (a window needs both ends)."""
        window = (window_start, window_end) if window_start and window_end else None
        return cls(call_time, zone(zone_name), window)

    def instant(self, local_date: date) -> datetime:
        """The UTC instant of the call time on ``local_date`` (see the module's rules)."""
        return datetime.combine(local_date, self.call_time, tzinfo=self.zone).astimezone(UTC)

    def local_date(self, moment: datetime) -> date:
        """The user's local date at ``moment``."""
        return moment.astimezone(self.zone).date()


@dataclass(frozen=True)
class DueCall:
    """A user's next call: when (UTC) and for which of their local dates.

    Attributes:
        at: The UTC instant the call is due.
        local_date: The user's local date it belongs to.
    """

    at: datetime
    local_date: date


def next_call(schedule: CallSchedule, *, after: date | None, not_before: datetime) -> DueCall:
    """The first call on a local date after ``after`` that is due no earlier than ``not_before``.

    Args:
        schedule: The user's call time and zone.
        after: The last local date called or missed (None: never called).
        not_before: Earliest acceptable instant: ``now - grace`` for a new or changed
            user (a call time a few minutes ago is still honoured), ``slot - grace``
            after a missed call.
    """
    day = schedule.local_date(not_before) - _DAY
    if after is not None and after >= day:
        day = after + _DAY
    while True:  # at most three dates: the call time falls once on each local date
        at = schedule.instant(day)
        if at >= not_before:
            return DueCall(at, day)
        day += _DAY


def retry_at(
    schedule: CallSchedule, *, local_date: date, ended_at: datetime, delay: timedelta
) -> datetime | None:
    """When to retry a call of ``local_date`` that ended at ``ended_at``, or None.

    The retry comes ``delay`` after the failed attempt, moved up to the window's start
    when that is earlier; None when that is past the window or on another local date.
    """
    window_start, window_end = schedule.window or (time(0), _END_OF_DAY)
    at = (ended_at.astimezone(UTC) + delay).astimezone(schedule.zone)  # elapsed time, not wall
    if at.date() != local_date or at.time() > window_end:
        return None
    if at.time() < window_start:
        at = datetime.combine(local_date, window_start, tzinfo=schedule.zone)
    return at.astimezone(UTC)


def slot_of(moment: datetime, every: timedelta) -> datetime:
    """The slot ``moment`` falls in: the UTC multiple of ``every`` at or before it."""
    step = int(every.total_seconds())
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, tz=UTC)


def slots_to_emit(
    last: datetime | None, now: datetime, *, every: timedelta, grace: timedelta
) -> tuple[list[datetime], int]:
    """The slots a scheduler emits at ``now``, and how many missed ones it skips.

    Every slot after ``last`` up to ``now``'s, oldest first; of those, the slots older
    than ``grace`` are skipped (their users are handled as missed by the next tick).
    A scheduler that never ran emits the current slot only.
    """
    current = slot_of(now, every)
    if last is None:
        return [current], 0
    if last >= current:
        return [], 0
    missed = int((current - slot_of(last, every)) / every)  # grid slots after ``last``
    oldest = slot_of(now - grace, every)
    if oldest < now - grace:
        oldest += every
    slots = []
    # From the grid, not from ``last``: after a change of the tick interval ``last``
    # may lie off the new grid.
    slot = max(slot_of(last, every) + every, oldest)
    while slot <= current:
        slots.append(slot)
        slot += every
    return slots, missed - len(slots)
