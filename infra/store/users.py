"""Users called every day, and their call preferences (the users API's store).

A user's ``next_call_at`` is computed whenever their preferences are written, from the
rules in ``infra.calendar``: a call time less than the grace window ago is still
honoured today, an older one waits for tomorrow, and a local date that already has a
call (or a missed one) is never called again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from contracts.users import CallPreferences, NewUser
from infra.calendar import CallSchedule, next_call
from infra.settings import DailyCallsSettings
from infra.store.dialing import clock_time
from infra.store.engine import transaction
from infra.store.jobs import utc_now
from infra.store.records import UserRecord
from infra.store.tables import OUTBOUND_CALLS, TENANTS, USERS

PROMISE_MARGIN = timedelta(minutes=1)
"""Time a tick may take to run after its slot, allowed for when promising a call today."""


def users_of(engine: sa.Engine, settings: DailyCallsSettings) -> SqlUsers:
    """The users store with the daily calls' grace window and tick interval."""
    return SqlUsers(
        engine,
        grace=timedelta(minutes=settings.grace_min),
        tick_every=timedelta(minutes=settings.tick_every_min),
    )


class SqlUsers:
    """Users in the SQL store.

    Args:
        engine: The store.
        grace: How late a call may be placed (the call book's grace window).
        tick_every: The ticks' interval: a call time is still honoured today only if
            the next tick (at most ``tick_every`` away, plus a minute's margin) finds
            it within the grace window, so nobody is promised a call and then marked
            missed.
        clock: The current time.

    Raises (every method):
        TransientError: The database is unavailable.
        PermanentError: A write was rejected (e.g. the tenant does not exist).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        grace: timedelta = timedelta(minutes=30),
        tick_every: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._honoured = max(grace - tick_every - PROMISE_MARGIN, timedelta(0))
        self._clock = clock

    def add_user(self, tenant_id: str, user: NewUser) -> UserRecord:
        """Add a user; their first call is computed from now."""
        now = self._clock()
        user_id = f"usr_{uuid.uuid4().hex}"
        with transaction(self._engine) as conn:
            conn.execute(
                USERS.insert().values(
                    id=user_id,
                    tenant_id=tenant_id,
                    name=user.name,
                    phone=user.phone,
                    created_at=now,
                    **self._preference_values(user, after=None, now=now),
                )
            )
            return _record(_select_user(conn, user_id, tenant_id))

    def get_user(self, user_id: str, *, tenant_id: str | None) -> UserRecord | None:
        """One user (of ``tenant_id`` unless None), or None."""
        with transaction(self._engine) as conn:
            row = _select_user(conn, user_id, tenant_id)
        return None if row is None else _record(row)

    def set_preferences(
        self, user_id: str, preferences: CallPreferences, *, tenant_id: str | None
    ) -> UserRecord | None:
        """Replace a user's call preferences; None when there is no such user.

        The next call is recomputed from now, after the last local date that has a call
        (a cancelled one does not count: switching calls off and on again the same day
        still calls today); switching calls off cancels the user's calls that are
        scheduled or queued.
        """
        now = self._clock()
        with transaction(self._engine) as conn:
            if _select_user(conn, user_id, tenant_id) is None:
                return None
            last = conn.execute(
                sa.select(OUTBOUND_CALLS.c.local_date, OUTBOUND_CALLS.c.due_at)
                .where(
                    OUTBOUND_CALLS.c.user_id == user_id,
                    OUTBOUND_CALLS.c.status != "cancelled",
                )
                .order_by(OUTBOUND_CALLS.c.local_date.desc())
                .limit(1)
            ).first()
            after = None
            if last is not None:
                # The last call's date in the NEW zone too: moving east after today's
                # call must not make a second call on a local date already called.
                in_new_zone = last.due_at.astimezone(ZoneInfo(preferences.local_tz)).date()
                after = max(last.local_date, in_new_zone)
            conn.execute(
                USERS.update()
                .where(USERS.c.id == user_id)
                .values(**self._preference_values(preferences, after=after, now=now))
            )
            if not preferences.call_enabled:
                conn.execute(
                    OUTBOUND_CALLS.update()
                    .where(
                        OUTBOUND_CALLS.c.user_id == user_id,
                        OUTBOUND_CALLS.c.status.in_(("scheduled", "queued")),
                    )
                    .values(status="cancelled", error="calls switched off", updated_at=now)
                )
            return _record(_select_user(conn, user_id, tenant_id))

    def list_users(self, *, tenant_id: str | None, limit: int = 100) -> list[UserRecord]:
        """Users (of one tenant unless None), by name."""
        query = sa.select(USERS).order_by(USERS.c.name, USERS.c.id).limit(limit)
        if tenant_id is not None:
            query = query.where(USERS.c.tenant_id == tenant_id)
        with transaction(self._engine) as conn:
            return [_record(row) for row in conn.execute(query)]

    def tenant_id_by_name(self, name: str) -> str | None:
        """A tenant's id by its name (for the CLI)."""
        with transaction(self._engine) as conn:
            return conn.execute(
                sa.select(TENANTS.c.id).where(TENANTS.c.name == name)
            ).scalar_one_or_none()

    def _preference_values(
        self, preferences: CallPreferences, *, after: date | None, now: datetime
    ) -> dict[str, Any]:
        due = None
        if preferences.call_enabled:
            schedule = CallSchedule.of(
                preferences.call_time,
                preferences.local_tz,
                preferences.window_start,
                preferences.window_end,
            )
            due = next_call(schedule, after=after, not_before=now - self._honoured)
        return {
            "local_tz": preferences.local_tz,
            "call_time": preferences.call_time.isoformat(),
            "call_enabled": preferences.call_enabled,
            "window_start": _text(preferences.window_start),
            "window_end": _text(preferences.window_end),
            "next_call_at": due.at if due else None,
            "next_local_date": due.local_date if due else None,
            "updated_at": now,
        }


def _text(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _select_user(conn: sa.Connection, user_id: str, tenant_id: str | None) -> Any:
    query = sa.select(USERS).where(USERS.c.id == user_id)
    if tenant_id is not None:
        query = query.where(USERS.c.tenant_id == tenant_id)
    return conn.execute(query).first()


def _record(row: Any) -> UserRecord:
    return UserRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        phone=row.phone,
        preferences=CallPreferences(
            call_enabled=row.call_enabled,
            call_time=row.call_time,
            local_tz=row.local_tz,
            window_start=clock_time(row.window_start),
            window_end=clock_time(row.window_end),
        ),
        next_call_at=row.next_call_at,
        next_local_date=row.next_local_date,
        created_at=row.created_at,
    )
