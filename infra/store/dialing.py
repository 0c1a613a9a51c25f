"""The call book: outbound calls from "due" to their last status webhook.

``SqlCallBook`` implements the step ports ``DialPlan`` and ``CallBook`` of
``actors.ports`` structurally, and applies the telephony provider's status events for
the webhook. An outbound call row's ``status`` (``contracts.values.CallStatus``) moves
forward only::

    scheduled ─► queued ─► placing ─► placed ─► ringing ─► in_progress ─► completed
    (a retry)       │          │                                          failed
                    │          └─► unknown (may have been placed: review)  no_answer
                    └─► cancelled (calls switched off)                      busy
    missed, unplaceable: never queued

Every write is keyed, so a replayed tick or placement changes nothing:

- a tick queues each due user once per (user, local date, attempt) — a unique
  constraint — and moves the user's ``next_call_at`` to the next local date in the same
  transaction; it then returns every call queued under its job that is still
  ``queued``, so a tick that died between committing and publishing publishes on its
  next delivery;
- a status event is recorded once per event key; a repeat only counts a delivery;
- a transition is one conditional ``UPDATE`` (the current status must precede the new
  one), atomic on SQLite and PostgreSQL without row locks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, get_args

import sqlalchemy as sa

from contracts.values import CallEnding, CallPurpose, OutboundCall
from infra.calendar import CallSchedule, next_call, retry_at
from infra.settings import DailyCallsSettings
from infra.store.engine import PRESERVE_ROWCOUNT, dialect_insert, transaction
from infra.store.jobs import utc_now
from infra.store.records import EventOutcome, TelephonyEvent
from infra.store.tables import (
    CALL_EVENTS,
    CALLBACKS,
    OUTBOUND_CALLS,
    TENANTS,
    USERS,
)

ENDED: tuple[CallEnding, ...] = get_args(CallEnding)
"""Statuses the provider ends a call with."""
RETRIED = ("failed", "no_answer", "busy")
"""Endings that earn a daily call a retry, while it has retries left."""

_SENT = ("placing", "placed", "unknown")
_PREDECESSORS: dict[str, tuple[str, ...]] = {
    "ringing": _SENT,
    "in_progress": (*_SENT, "ringing"),
    **dict.fromkeys(ENDED, (*_SENT, "ringing", "in_progress")),
}
"""For each event status, the statuses it may follow (a late ``ringing`` changes nothing)."""

_NAMESPACE = uuid.UUID("6f0c7f0e-6a51-4d4e-9a3c-5b0f1d2e3a47")


def call_id(*parts: object) -> str:
    """A deterministic call id for a natural key (user, local date, attempt …)."""
    return "call_" + uuid.uuid5(_NAMESPACE, "|".join(map(str, parts))).hex


def clock_time(text: str | None) -> time | None:
    """A stored ``HH:MM:SS`` as a time."""
    return None if text is None else time.fromisoformat(text)


def call_book(engine: sa.Engine, settings: DailyCallsSettings) -> SqlCallBook:
    """The call book with the daily calls' grace window and retry policy."""
    return SqlCallBook(
        engine,
        grace=timedelta(minutes=settings.grace_min),
        retries=settings.retries,
        retry_after=timedelta(minutes=settings.retry_after_min),
    )


class SqlCallBook:
    """Outbound calls in the SQL store.

    Args:
        engine: The store.
        grace: A daily call later than this is ``missed`` instead of placed.
        retries: Retries of a failed, busy or unanswered daily call.
        retry_after: Delay before a retry (kept inside the calling window and day).
        clock: The current time.

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        grace: timedelta = timedelta(minutes=30),
        retries: int = 2,
        retry_after: timedelta = timedelta(minutes=30),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._grace = grace
        self._retries = retries
        self._retry_after = retry_after
        self._clock = clock

    def claim_daily_calls(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """Queue the daily calls and retries due at ``slot`` (see ``actors.ports.DialPlan``)."""
        now = self._clock()
        # Lateness is measured when the tick runs, not at its slot: a slot emitted while
        # catching up after downtime (or a tick that waited in a backlog) must not place
        # a call more than the grace window after its time.
        late = max(slot, now) - self._grace
        with transaction(self._engine) as conn:
            due = conn.execute(_locked(conn, _due_users(slot))).all()
            tenants = _tenant_lines(conn, {row.tenant_id for row in due})
            calls: list[dict[str, Any]] = []
            moves: list[tuple[str, datetime, date]] = []
            for row in due:
                schedule = CallSchedule.of(
                    time.fromisoformat(row.call_time),
                    row.local_tz,
                    clock_time(row.window_start),
                    clock_time(row.window_end),
                )
                agent_id, caller_id = tenants.get(row.tenant_id, (None, None))
                missed = row.next_call_at < late
                calls.append(
                    {
                        "id": call_id(row.id, row.next_local_date, 1),
                        "tenant_id": row.tenant_id,
                        "purpose": "daily",
                        "user_id": row.id,
                        "local_date": row.next_local_date,
                        "attempt": 1,
                        "phone": row.phone,
                        "agent_id": agent_id,
                        "caller_id": caller_id,
                        "status": "missed" if missed else "queued",
                        "due_at": row.next_call_at,
                        "job_id": job_id,
                        "error": "more than the grace window late" if missed else None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                following = next_call(schedule, after=row.next_local_date, not_before=late)
                moves.append((row.id, following.at, following.local_date))
            if calls:
                conn.execute(_revive_cancelled(dialect_insert(conn, OUTBOUND_CALLS)), calls)
            _move_users(conn, moves, now)
            due_retries = (
                OUTBOUND_CALLS.c.status == "scheduled",
                OUTBOUND_CALLS.c.due_at <= slot,
            )
            conn.execute(
                OUTBOUND_CALLS.update()
                .where(*due_retries, OUTBOUND_CALLS.c.due_at < late)
                .values(
                    status="missed",
                    job_id=job_id,
                    error="retry more than the grace window late",
                    updated_at=now,
                )
            )
            conn.execute(
                OUTBOUND_CALLS.update()
                .where(*due_retries)
                .values(status="queued", job_id=job_id, updated_at=now)
            )
            return _queued(conn, job_id)

    def claim_callbacks(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """Queue the callbacks due at ``slot`` (see ``actors.ports.DialPlan``)."""
        now = self._clock()
        with transaction(self._engine) as conn:
            query = sa.select(CALLBACKS).where(
                CALLBACKS.c.status == "scheduled", CALLBACKS.c.due_at <= slot
            )
            due = conn.execute(_locked(conn, query.order_by(CALLBACKS.c.due_at))).all()
            tenants = _tenant_lines(conn, {row.tenant_id for row in due})
            calls: list[dict[str, Any]] = []
            for row in due:
                if row.phone is None:
                    conn.execute(
                        CALLBACKS.update()
                        .where(CALLBACKS.c.id == row.id)
                        .values(status="unplaceable")
                    )
                    continue
                agent_id, caller_id = tenants.get(row.tenant_id, (None, None))
                new_id = call_id("callback", row.tenant_id, row.conversation_id, 1)
                calls.append(
                    {
                        "id": new_id,
                        "tenant_id": row.tenant_id,
                        "purpose": "callback",
                        "conversation_id": row.conversation_id,
                        "attempt": 1,
                        "phone": row.phone,
                        "agent_id": row.agent_id or agent_id,
                        "caller_id": caller_id,
                        "status": "queued",
                        "due_at": row.due_at,
                        "job_id": job_id,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                conn.execute(
                    CALLBACKS.update()
                    .where(CALLBACKS.c.id == row.id)
                    .values(status="queued", call_id=new_id)
                )
            if calls:
                conn.execute(dialect_insert(conn, OUTBOUND_CALLS).on_conflict_do_nothing(), calls)
            return _queued(conn, job_id)

    def start_placing(self, call_id: str) -> bool:
        """Move a queued call to ``placing`` (see ``actors.ports.CallBook``)."""
        now = self._clock()
        with transaction(self._engine) as conn:
            if _move(conn, call_id, ("queued",), status="placing", updated_at=now):
                return True
            _move(
                conn,
                call_id,
                ("placing",),
                status="unknown",
                error="placing was interrupted: the provider may have the call",
                updated_at=now,
            )
            return False

    def placed(self, call_id: str, provider_call_id: str) -> None:
        """Record the provider's call id; a ``placing`` (or ``unknown``) call becomes ``placed``."""
        now = self._clock()
        with transaction(self._engine) as conn:
            conn.execute(
                OUTBOUND_CALLS.update()
                .where(OUTBOUND_CALLS.c.id == call_id)
                .values(
                    provider_call_id=provider_call_id,
                    placed_at=now,
                    updated_at=now,
                    # ``unknown``: a duplicate delivery found the call mid-request;
                    # the provider's answer settles it.
                    status=sa.case(
                        (OUTBOUND_CALLS.c.status.in_(("placing", "unknown")), "placed"),
                        else_=OUTBOUND_CALLS.c.status,
                    ),
                )
            )

    def requeue(self, call_id: str, error: str) -> None:
        """Put a ``placing`` call back to ``queued`` (its request never arrived)."""
        with transaction(self._engine) as conn:
            _move(
                conn, call_id, ("placing",), status="queued", error=error, updated_at=self._clock()
            )

    def fail(self, call_id: str, error: str, *, unknown: bool = False) -> None:
        """Record that placing failed (``unknown``: the provider may have the call)."""
        now = self._clock()
        with transaction(self._engine) as conn:
            _move(
                conn,
                call_id,
                ("queued", "placing"),
                status="unknown" if unknown else "failed",
                error=error,
                ended_at=None if unknown else now,
                updated_at=now,
            )

    def apply_event(self, event: TelephonyEvent) -> EventOutcome:
        """Record a status event and apply it when it moves its call forward.

        A failed, busy or unanswered daily call with retries left gets its next attempt
        as a ``scheduled`` row, due ``retry_after`` later inside the user's calling
        window on the same local date (none when that does not fit).
        """
        now = self._clock()
        with transaction(self._engine) as conn:
            recorded = conn.execute(
                dialect_insert(conn, CALL_EVENTS)
                .values(
                    event_key=event.event_key,
                    call_id=event.call_id,
                    provider_call_id=event.provider_call_id,
                    status=event.status,
                    outcome="pending",
                    payload=event.payload,
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["event_key"]),
                execution_options=PRESERVE_ROWCOUNT,
            )
            if recorded.rowcount != 1:
                conn.execute(
                    CALL_EVENTS.update()
                    .where(CALL_EVENTS.c.event_key == event.event_key)
                    .values(deliveries=CALL_EVENTS.c.deliveries + 1)
                )
                return EventOutcome("duplicate", _find(conn, event))
            call = _find(conn, event)
            outcome, retry = "unknown_call", None
            if call is not None:
                changes: dict[str, Any] = {"status": event.status, "updated_at": now}
                if event.status in ENDED:
                    changes["ended_at"] = event.occurred_at
                    changes["duration_secs"] = event.duration_secs
                    changes["error"] = event.error
                if call.provider_call_id is None and event.provider_call_id:
                    changes["provider_call_id"] = event.provider_call_id
                applied = _move(conn, call.id, _PREDECESSORS[event.status], **changes)
                outcome = "applied" if applied else "ignored"
                if applied and event.status in RETRIED:
                    retry = self._schedule_retry(conn, call, event.occurred_at, now)
                call = _get(conn, call.id)
            conn.execute(
                CALL_EVENTS.update()
                .where(CALL_EVENTS.c.event_key == event.event_key)
                .values(outcome=outcome, call_id=call.id if call else event.call_id)
            )
            return EventOutcome(outcome, call, retry)

    def _schedule_retry(
        self, conn: sa.Connection, call: OutboundCall, ended_at: datetime, now: datetime
    ) -> OutboundCall | None:
        if call.purpose != "daily" or call.attempt > self._retries or call.local_date is None:
            return None
        user = conn.execute(sa.select(USERS).where(USERS.c.id == call.user_id)).first()
        if user is None or not user.call_enabled:
            return None
        schedule = CallSchedule.of(
            time.fromisoformat(user.call_time),
            user.local_tz,
            clock_time(user.window_start),
            clock_time(user.window_end),
        )
        due = retry_at(
            schedule, local_date=call.local_date, ended_at=ended_at, delay=self._retry_after
        )
        if due is None:
            return None
        attempt = call.attempt + 1
        row = {
            **call.model_dump(exclude={"status", "due_at", "job_id", "error"}),
            "id": call_id(call.user_id, call.local_date, attempt),
            "attempt": attempt,
            "status": "scheduled",
            "due_at": due,
            "provider_call_id": None,
            "placed_at": None,
            "ended_at": None,
            "duration_secs": None,
            "created_at": now,
            "updated_at": now,
        }
        conn.execute(dialect_insert(conn, OUTBOUND_CALLS).values(row).on_conflict_do_nothing())
        return _get(conn, row["id"])

    def calls_of_user(self, user_id: str, *, limit: int = 100) -> list[OutboundCall]:
        """A user's calls, newest first (by local date, then attempt)."""
        query = (
            sa.select(OUTBOUND_CALLS)
            .where(OUTBOUND_CALLS.c.user_id == user_id)
            .order_by(
                OUTBOUND_CALLS.c.local_date.desc(),
                OUTBOUND_CALLS.c.attempt.desc(),
            )
            .limit(limit)
        )
        with transaction(self._engine) as conn:
            return [_call(row) for row in conn.execute(query)]

    def needing_review(self, *, limit: int = 100) -> list[OutboundCall]:
        """Calls in ``unknown``: the provider may or may not have placed them. Newest first."""
        query = (
            sa.select(OUTBOUND_CALLS)
            .where(OUTBOUND_CALLS.c.status == "unknown")
            .order_by(OUTBOUND_CALLS.c.updated_at.desc())
            .limit(limit)
        )
        with transaction(self._engine) as conn:
            return [_call(row) for row in conn.execute(query)]

    def get(self, call_id: str) -> OutboundCall | None:
        """One call, or None."""
        with transaction(self._engine) as conn:
            return _get(conn, call_id)

    def calls_of_job(self, job_id: str) -> list[OutboundCall]:
        """The calls a tick queued (or found missed), by id."""
        query = (
            sa.select(OUTBOUND_CALLS)
            .where(OUTBOUND_CALLS.c.job_id == job_id)
            .order_by(OUTBOUND_CALLS.c.id)
        )
        with transaction(self._engine) as conn:
            return [_call(row) for row in conn.execute(query)]


def _revive_cancelled(insert: Any) -> Any:
    """On a call that exists: queue it again if it was cancelled, else leave it.

    A call cancelled when calls were switched off, and due again because they were
    switched back on the same day, is queued again.
    """
    return insert.on_conflict_do_update(
        index_elements=["user_id", "local_date", "attempt"],
        set_={
            name: insert.excluded[name]
            for name in ("status", "due_at", "job_id", "error", "updated_at")
        },
        where=OUTBOUND_CALLS.c.status == "cancelled",
    )


def _move_users(
    conn: sa.Connection, moves: Sequence[tuple[str, datetime, date]], now: datetime
) -> None:
    """Set each user's ``next_call_at`` and ``next_local_date`` (one ``executemany``)."""
    if moves:
        conn.execute(
            USERS.update()
            .where(USERS.c.id == sa.bindparam("b_id"))
            .values(
                next_call_at=sa.bindparam("b_at"),
                next_local_date=sa.bindparam("b_date"),
                updated_at=now,
            ),
            [{"b_id": i, "b_at": at, "b_date": day} for i, at, day in moves],
        )


def _due_users(slot: datetime) -> sa.Select[Any]:
    return (
        sa.select(
            USERS.c.id,
            USERS.c.tenant_id,
            USERS.c.phone,
            USERS.c.local_tz,
            USERS.c.call_time,
            USERS.c.window_start,
            USERS.c.window_end,
            USERS.c.next_call_at,
            USERS.c.next_local_date,
        )
        .where(USERS.c.next_call_at <= slot)
        .order_by(USERS.c.next_call_at)
    )


def _locked(conn: sa.Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    """On PostgreSQL, lock the rows and skip those a concurrent tick holds."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _tenant_lines(
    conn: sa.Connection, tenant_ids: set[str]
) -> dict[str, tuple[str | None, str | None]]:
    """Each tenant's own voice agent and caller id for outbound calls."""
    if not tenant_ids:
        return {}
    rows = conn.execute(
        sa.select(TENANTS.c.id, TENANTS.c.call_agent_id, TENANTS.c.caller_id).where(
            TENANTS.c.id.in_(tenant_ids)
        )
    )
    return {row.id: (row.call_agent_id, row.caller_id) for row in rows}


def _queued(conn: sa.Connection, job_id: str) -> list[OutboundCall]:
    query = (
        sa.select(OUTBOUND_CALLS)
        .where(OUTBOUND_CALLS.c.job_id == job_id, OUTBOUND_CALLS.c.status == "queued")
        .order_by(OUTBOUND_CALLS.c.id)
    )
    return [_call(row) for row in conn.execute(query)]


def _move(conn: sa.Connection, call_id: str, sources: Sequence[str], **values: Any) -> bool:
    """Update the call when its status is one of ``sources``; whether it was."""
    result = conn.execute(
        OUTBOUND_CALLS.update()
        .where(OUTBOUND_CALLS.c.id == call_id, OUTBOUND_CALLS.c.status.in_(sources))
        .values(**values),
        execution_options=PRESERVE_ROWCOUNT,
    )
    return result.rowcount == 1


def _find(conn: sa.Connection, event: TelephonyEvent) -> OutboundCall | None:
    if event.call_id is not None and (call := _get(conn, event.call_id)) is not None:
        return call
    if event.provider_call_id is None:
        return None
    row = conn.execute(
        sa.select(OUTBOUND_CALLS).where(OUTBOUND_CALLS.c.provider_call_id == event.provider_call_id)
    ).first()
    return None if row is None else _call(row)


def _get(conn: sa.Connection, call_id: str) -> OutboundCall | None:
    row = conn.execute(sa.select(OUTBOUND_CALLS).where(OUTBOUND_CALLS.c.id == call_id)).first()
    return None if row is None else _call(row)


def _call(row: sa.Row[Any]) -> OutboundCall:
    # Read back from our own rows: built without validating again (a tick reads 10,000).
    purpose: CallPurpose = "callback" if row.purpose == "callback" else "daily"
    return OutboundCall.model_construct(
        id=row.id,
        tenant_id=row.tenant_id,
        purpose=purpose,
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        local_date=row.local_date,
        attempt=row.attempt,
        phone=row.phone,
        agent_id=row.agent_id,
        caller_id=row.caller_id,
        status=row.status,
        due_at=row.due_at,
        job_id=row.job_id,
        provider_call_id=row.provider_call_id,
        placed_at=row.placed_at,
        ended_at=row.ended_at,
        duration_secs=row.duration_secs,
        error=row.error,
    )
