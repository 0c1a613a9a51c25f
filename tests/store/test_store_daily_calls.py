"""Daily calls in the SQL store: users (``SqlUsers``) and the call book (``SqlCallBook``).

Every test runs on SQLite and PostgreSQL (``tests/store/conftest.py``). Times are on
2026-03-10; most users live in UTC so a slot reads as the call time it serves, and the
zone-specific ones say why they are not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from contracts.errors import PermanentError
from contracts.users import CallPreferences, NewUser
from contracts.values import OutboundCall
from infra.store.calls import SqlCallStore
from infra.store.dialing import SqlCallBook, call_id
from infra.store.records import TelephonyEvent, Tenant, UserRecord
from infra.store.tables import CALL_EVENTS, CALLBACKS, OUTBOUND_CALLS, TENANTS, USERS
from infra.store.tenants import SqlTenantDirectory
from infra.store.users import SqlUsers
from tests.fakes import FixedClock

TODAY = date(2026, 3, 10)
TOMORROW = date(2026, 3, 11)
PHONE = "+14155550123"


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 10) -> datetime:
    """An instant of March 2026 in UTC (``day`` 10 unless given)."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def make_user(**overrides: Any) -> NewUser:
    """A user called at 08:00 UTC; keyword overrides replace any field."""
    fields: dict[str, Any] = {
        "name": "Asha",
        "phone": PHONE,
        "call_time": "08:00",
        "local_tz": "UTC",
    }
    return NewUser.model_validate(fields | overrides)


def preferences(**overrides: Any) -> CallPreferences:
    """Call preferences: 08:00 UTC, on; keyword overrides replace any field."""
    fields: dict[str, Any] = {"call_time": "08:00", "local_tz": "UTC"}
    return CallPreferences.model_validate(fields | overrides)


def event(
    status: str,
    *,
    call: str | None,
    provider_call_id: str | None = None,
    occurred_at: datetime | None = None,
    key: str | None = None,
    duration_secs: int | None = None,
    error: str | None = None,
) -> TelephonyEvent:
    """A provider status event of ``call`` (our id as echoed in its metadata)."""
    return TelephonyEvent(
        event_key=key or f"{call or provider_call_id}:{status}",
        status=status,
        call_id=call,
        provider_call_id=provider_call_id,
        occurred_at=occurred_at or at(8, 1),
        duration_secs=duration_secs,
        error=error,
        payload={"status": status},
    )


def count(engine: sa.Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    """Rows of ``table`` matching ``where``."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)
        ).scalar_one()


def set_tenant_line(engine: sa.Engine, tenant_id: str, agent_id: str, caller_id: str) -> None:
    """Give a tenant its own outbound agent and caller id (no API writes them yet)."""
    with engine.begin() as conn:
        conn.execute(
            TENANTS.update()
            .where(TENANTS.c.id == tenant_id)
            .values(call_agent_id=agent_id, caller_id=caller_id)
        )


@pytest.fixture
def clock() -> FixedClock:
    """07:00 UTC on 2026-03-10, an hour before the default call time."""
    return FixedClock(at(7))


@pytest.fixture
def users(engine: sa.Engine, clock: FixedClock) -> SqlUsers:
    """Users with the default 30-minute grace window."""
    return SqlUsers(engine, clock=clock)


@pytest.fixture
def book(engine: sa.Engine, clock: FixedClock) -> SqlCallBook:
    """The call book: 30-minute grace, 2 retries 30 minutes apart."""
    return SqlCallBook(engine, clock=clock)


AddUser = Callable[..., UserRecord]


@pytest.fixture
def add_user(users: SqlUsers, tenant: Tenant) -> AddUser:
    """Add a user of ``acme`` built by ``make_user(**overrides)``."""

    def add(**overrides: Any) -> UserRecord:
        return users.add_user(tenant.id, make_user(**overrides))

    return add


def claim_at(
    book: SqlCallBook, clock: FixedClock, slot: datetime, job_id: str
) -> list[OutboundCall]:
    """Run a tick of ``slot`` at ``slot`` by the clock."""
    clock.at = slot
    return book.claim_daily_calls(slot, job_id)


def placed_call(book: SqlCallBook, clock: FixedClock, user: UserRecord) -> OutboundCall:
    """Claim the user's call at 08:00 and place it with the provider id ``pc-<user>``."""
    [call] = [c for c in claim_at(book, clock, at(8), "tick-0800") if c.user_id == user.id]
    assert book.start_placing(call.id)
    book.placed(call.id, f"pc-{user.id}")
    placed = book.get(call.id)
    assert placed is not None
    return placed


# --- SqlUsers -----------------------------------------------------------------------------


def test_a_new_user_is_stored_with_their_preferences_and_next_call(
    users: SqlUsers, tenant: Tenant, clock: FixedClock
) -> None:
    added = users.add_user(
        tenant.id,
        make_user(
            local_tz="America/New_York",
            call_time="08:00:30",
            window_start="07:30",
            window_end="12:00",
        ),
    )

    assert added.id.startswith("usr_")
    assert added.tenant_id == tenant.id
    assert (added.name, added.phone) == ("Asha", PHONE)
    assert added.preferences == CallPreferences(
        call_enabled=True,
        call_time=time(8, 0, 30),
        local_tz="America/New_York",
        window_start=time(7, 30),
        window_end=time(12),
    )
    assert added.next_call_at == at(12, 0, 30)  # 08:00:30 EDT
    assert added.next_local_date == TODAY
    assert added.created_at == clock.at
    assert users.get_user(added.id, tenant_id=tenant.id) == added


@pytest.mark.parametrize(
    ("created", "expected_at", "expected_date"),
    [
        pytest.param(at(7, 59), at(8), TODAY, id="a-minute-before"),
        pytest.param(at(8, 1), at(8), TODAY, id="a-minute-after-still-today"),
        # Honoured today while the next tick (at most 5 min away, plus a minute's margin)
        # still finds the call within the 30-minute grace window: up to 24 minutes late.
        pytest.param(at(8, 24), at(8), TODAY, id="grace-less-a-tick-after-still-today"),
        pytest.param(at(8, 25), at(8, day=11), TOMORROW, id="too-late-for-the-next-tick-tomorrow"),
        pytest.param(at(14), at(8, day=11), TOMORROW, id="hours-after-tomorrow"),
    ],
)
def test_a_new_users_first_call_depends_on_how_late_their_call_time_is(
    add_user: AddUser,
    clock: FixedClock,
    created: datetime,
    expected_at: datetime,
    expected_date: date,
) -> None:
    clock.at = created

    added = add_user()

    assert (added.next_call_at, added.next_local_date) == (expected_at, expected_date)


def test_a_user_in_a_half_hour_zone_is_stored_at_the_right_instant(
    add_user: AddUser, clock: FixedClock
) -> None:
    clock.at = at(1)  # 06:30 in Kolkata

    added = add_user(local_tz="Asia/Kolkata")

    assert (added.next_call_at, added.next_local_date) == (at(2, 30), TODAY)


def test_adding_a_user_to_an_unknown_tenant_is_refused(users: SqlUsers) -> None:
    with pytest.raises(PermanentError):
        users.add_user("no-such-tenant", make_user())


def test_users_are_read_listed_and_changed_only_within_their_tenant(
    users: SqlUsers, tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    zoe = users.add_user(tenant.id, make_user(name="Zoe"))
    bea = users.add_user(tenant.id, make_user(name="Bea"))
    max_ = users.add_user(other.id, make_user(name="Max"))

    assert users.get_user(zoe.id, tenant_id=other.id) is None
    assert users.get_user(zoe.id, tenant_id=None) == zoe
    assert users.set_preferences(zoe.id, preferences(call_time="09:00"), tenant_id=other.id) is None
    assert users.get_user(zoe.id, tenant_id=tenant.id) == zoe
    assert [u.name for u in users.list_users(tenant_id=tenant.id)] == ["Bea", "Zoe"]
    assert [u.name for u in users.list_users(tenant_id=other.id)] == ["Max"]
    assert [u.id for u in users.list_users(tenant_id=None)] == [bea.id, max_.id, zoe.id]
    assert [u.name for u in users.list_users(tenant_id=None, limit=2)] == ["Bea", "Max"]
    assert users.tenant_id_by_name("globex") == other.id
    assert users.tenant_id_by_name("nobody") is None


def test_set_preferences_of_an_unknown_user_is_none(users: SqlUsers, tenant: Tenant) -> None:
    assert users.set_preferences("usr_missing", preferences(), tenant_id=tenant.id) is None
    assert users.get_user("usr_missing", tenant_id=None) is None


def test_a_new_call_time_on_a_day_not_yet_called_is_still_today(
    users: SqlUsers, add_user: AddUser, tenant: Tenant, clock: FixedClock
) -> None:
    user = add_user()
    clock.at = at(7, 30)

    changed = users.set_preferences(user.id, preferences(call_time="10:00"), tenant_id=tenant.id)

    assert changed is not None
    assert changed.preferences.call_time == time(10)
    assert (changed.next_call_at, changed.next_local_date) == (at(10), TODAY)


def test_a_new_call_time_on_a_day_already_called_moves_to_tomorrow(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    user = add_user()
    assert len(claim_at(book, clock, at(8), "tick-0800")) == 1
    clock.at = at(9)

    changed = users.set_preferences(user.id, preferences(call_time="10:00"), tenant_id=tenant.id)

    assert changed is not None
    assert (changed.next_call_at, changed.next_local_date) == (at(10, day=11), TOMORROW)
    assert claim_at(book, clock, at(10), "tick-1000") == []


def test_a_day_that_was_missed_is_not_called_again_after_a_change(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    user = add_user()
    claim_at(book, clock, at(9), "tick-0900")  # an hour late: missed
    clock.at = at(9, 5)

    changed = users.set_preferences(user.id, preferences(call_time="10:00"), tenant_id=tenant.id)

    assert changed is not None
    assert changed.next_local_date == TOMORROW


def test_switching_calls_off_cancels_queued_and_scheduled_calls_and_clears_the_next_call(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    asha = add_user()
    ben = add_user(name="Ben", phone="+14155550124")
    calls = {c.user_id: c for c in claim_at(book, clock, at(8), "tick-0800")}
    asha_call, ben_call = calls[asha.id], calls[ben.id]
    assert book.start_placing(asha_call.id)
    book.placed(asha_call.id, "pc-asha")
    applied = book.apply_event(event("no_answer", call=asha_call.id, occurred_at=at(8, 2)))
    assert applied.retry is not None
    clock.at = at(8, 10)

    for user in (asha, ben):
        off = users.set_preferences(user.id, preferences(call_enabled=False), tenant_id=tenant.id)
        assert off is not None
        assert not off.preferences.call_enabled
        assert (off.next_call_at, off.next_local_date) == (None, None)

    retry = book.get(applied.retry.id)
    queued = book.get(ben_call.id)
    assert retry is not None
    assert queued is not None
    assert (retry.status, retry.error) == ("cancelled", "calls switched off")
    assert (queued.status, queued.error) == ("cancelled", "calls switched off")
    assert book.start_placing(ben_call.id) is False
    assert claim_at(book, clock, at(9), "tick-0900") == []
    assert claim_at(book, clock, at(8, day=11), "tick-tomorrow") == []


def test_switching_calls_off_and_on_again_before_the_call_is_made_still_calls_today(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    user = add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    clock.at = at(8, 3)
    users.set_preferences(user.id, preferences(call_enabled=False), tenant_id=tenant.id)
    clock.at = at(8, 6)

    on = users.set_preferences(user.id, preferences(), tenant_id=tenant.id)
    calls = claim_at(book, clock, at(8, 10), "tick-0810")

    assert on is not None
    assert (on.next_call_at, on.next_local_date) == (at(8), TODAY)
    assert [(c.id, c.status, c.job_id, c.error) for c in calls] == [
        (call.id, "queued", "tick-0810", None)
    ]
    assert book.calls_of_user(user.id) == calls
    assert claim_at(book, clock, at(8), "tick-0800") == []


def test_switching_calls_off_and_on_again_after_the_call_was_made_waits_for_tomorrow(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    user = add_user()
    call = placed_call(book, clock, user)
    book.apply_event(event("completed", call=call.id, occurred_at=at(8, 2)))
    users.set_preferences(user.id, preferences(call_enabled=False), tenant_id=tenant.id)
    clock.at = at(8, 5)

    on = users.set_preferences(user.id, preferences(), tenant_id=tenant.id)

    assert on is not None
    assert (on.next_call_at, on.next_local_date) == (at(8, day=11), TOMORROW)


def test_a_change_of_zone_west_after_the_call_never_calls_that_date_again(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    # Called at 08:00 in Kolkata (02:30 UTC); moved to New York half an hour later.
    clock.at = at(0)
    user = add_user(local_tz="Asia/Kolkata")
    assert len(claim_at(book, clock, at(2, 30), "tick-0230")) == 1
    clock.at = at(3)

    moved = users.set_preferences(
        user.id, preferences(local_tz="America/New_York"), tenant_id=tenant.id
    )

    assert moved is not None
    assert moved.next_local_date == TOMORROW
    assert moved.next_call_at == at(12, day=11)


def test_a_change_of_zone_east_after_the_call_never_calls_that_local_date_again(
    users: SqlUsers, add_user: AddUser, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    # Called at 20:00 on the 9th in Los Angeles: 03:00 UTC, 12:00 of the 10th in Tokyo.
    clock.at = at(1)
    user = add_user(local_tz="America/Los_Angeles", call_time="20:00")
    assert [c.local_date for c in claim_at(book, clock, at(3), "tick-0300")] == [date(2026, 3, 9)]
    clock.at = at(3, 10)

    moved = users.set_preferences(
        user.id, preferences(local_tz="Asia/Tokyo", call_time="13:00"), tenant_id=tenant.id
    )

    # Tokyo's 10th was called at 12:00 JST: the next call is on the 11th, not at 13:00.
    assert moved is not None
    assert moved.next_local_date == TOMORROW
    assert claim_at(book, clock, at(4), "tick-0400") == []


# --- claim_daily_calls --------------------------------------------------------------------


def test_a_tick_queues_only_the_users_due_at_its_slot(
    add_user: AddUser, users: SqlUsers, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    due = add_user(name="Due")
    later = add_user(name="Later", call_time="08:05")
    tomorrow = add_user(name="Tomorrow", call_time="09:00")

    calls = claim_at(book, clock, at(8), "tick-0800")

    assert calls == [
        OutboundCall(
            id=call_id(due.id, TODAY, 1),
            tenant_id=tenant.id,
            purpose="daily",
            user_id=due.id,
            local_date=TODAY,
            attempt=1,
            phone=PHONE,
            status="queued",
            due_at=at(8),
            job_id="tick-0800",
        )
    ]
    assert book.calls_of_job("tick-0800") == calls
    moved = users.get_user(due.id, tenant_id=None)
    assert moved is not None
    assert (moved.next_call_at, moved.next_local_date) == (at(8, day=11), TOMORROW)
    assert users.get_user(later.id, tenant_id=None) == later
    assert users.get_user(tomorrow.id, tenant_id=None) == tomorrow
    assert [c.user_id for c in claim_at(book, clock, at(8, 5), "tick-0805")] == [later.id]


def test_a_user_exactly_the_grace_window_late_is_still_queued(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user(call_time="07:30")

    calls = claim_at(book, clock, at(8), "tick-0800")

    assert [(c.status, c.due_at) for c in calls] == [("queued", at(7, 30))]


def test_a_user_more_than_the_grace_window_late_is_missed_and_moves_to_the_next_date(
    add_user: AddUser, users: SqlUsers, book: SqlCallBook, clock: FixedClock
) -> None:
    user = add_user(call_time="07:30")

    calls = claim_at(book, clock, at(8, 5), "tick-0805")

    assert calls == []
    [missed] = book.calls_of_user(user.id)
    assert (missed.status, missed.local_date, missed.job_id) == ("missed", TODAY, "tick-0805")
    assert missed.error == "more than the grace window late"
    assert book.calls_of_job("tick-0805") == [missed]
    moved = users.get_user(user.id, tenant_id=None)
    assert moved is not None
    assert (moved.next_call_at, moved.next_local_date) == (at(7, 30, day=11), TOMORROW)


def test_a_user_missed_for_days_gets_one_missed_call_and_is_due_again_from_now(
    add_user: AddUser, users: SqlUsers, book: SqlCallBook, clock: FixedClock
) -> None:
    user = add_user()

    calls = claim_at(book, clock, at(7, 45, day=13), "tick-13th")

    assert calls == []
    assert [(c.status, c.local_date) for c in book.calls_of_user(user.id)] == [("missed", TODAY)]
    moved = users.get_user(user.id, tenant_id=None)
    assert moved is not None
    assert moved.next_local_date == date(2026, 3, 13)
    assert [c.user_id for c in claim_at(book, clock, at(8, day=13), "tick-13th-0800")] == [user.id]


def test_a_repeated_tick_returns_the_same_queued_calls_and_queues_nothing_new(
    add_user: AddUser, book: SqlCallBook, engine: sa.Engine, clock: FixedClock
) -> None:
    for n in range(3):
        add_user(name=f"User {n}", phone=f"+1415555012{n}")
    first = claim_at(book, clock, at(8), "tick-0800")

    again = claim_at(book, clock, at(8), "tick-0800")

    assert len(first) == 3
    assert again == first
    assert count(engine, OUTBOUND_CALLS) == 3


def test_a_repeated_tick_returns_only_the_calls_still_queued(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user(name="A", phone="+14155550121")
    add_user(name="B", phone="+14155550122")
    first = claim_at(book, clock, at(8), "tick-0800")
    assert book.start_placing(first[0].id)

    again = claim_at(book, clock, at(8), "tick-0800")

    assert again == first[1:]


def test_another_tick_for_the_same_slot_queues_nothing_twice(
    add_user: AddUser, book: SqlCallBook, engine: sa.Engine, clock: FixedClock
) -> None:
    add_user()
    first = claim_at(book, clock, at(8), "tick-0800")

    second = claim_at(book, clock, at(8), "tick-0800-again")

    assert len(first) == 1
    assert second == []
    assert book.calls_of_job("tick-0800") == first
    assert count(engine, OUTBOUND_CALLS) == 1


def test_a_user_due_again_for_a_date_already_queued_is_not_queued_twice(
    add_user: AddUser, users: SqlUsers, book: SqlCallBook, engine: sa.Engine, clock: FixedClock
) -> None:
    # As if a concurrent write put back today's call after the tick moved it on.
    user = add_user()
    [first] = claim_at(book, clock, at(8), "tick-0800")
    with engine.begin() as conn:
        conn.execute(
            USERS.update()
            .where(USERS.c.id == user.id)
            .values(next_call_at=at(8), next_local_date=TODAY)
        )

    second = claim_at(book, clock, at(8, 5), "tick-0805")

    assert second == []
    assert book.calls_of_user(user.id) == [first]
    moved = users.get_user(user.id, tenant_id=None)
    assert moved is not None
    assert moved.next_local_date == TOMORROW


def test_a_tick_copies_each_tenants_outbound_line_into_its_calls(
    users: SqlUsers,
    book: SqlCallBook,
    tenants: SqlTenantDirectory,
    tenant: Tenant,
    engine: sa.Engine,
    clock: FixedClock,
) -> None:
    plain, _ = tenants.add_tenant("plain")
    set_tenant_line(engine, tenant.id, "agent_outbound", "+14155550100")
    lined = users.add_user(tenant.id, make_user())
    unlined = users.add_user(plain.id, make_user(name="Ben"))

    calls = {c.user_id: c for c in claim_at(book, clock, at(8), "tick-0800")}

    assert (calls[lined.id].tenant_id, calls[lined.id].agent_id, calls[lined.id].caller_id) == (
        tenant.id,
        "agent_outbound",
        "+14155550100",
    )
    assert (calls[unlined.id].tenant_id, calls[unlined.id].agent_id) == (plain.id, None)
    assert calls[unlined.id].caller_id is None


def test_a_tick_queues_users_of_every_zone_by_their_instant(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    clock.at = at(0)
    kolkata = add_user(local_tz="Asia/Kolkata")  # 02:30 UTC on the 10th
    kiritimati = add_user(local_tz="Pacific/Kiritimati")  # 18:00 UTC on the 10th: the 11th
    pago_pago = add_user(local_tz="Pacific/Pago_Pago", call_time="20:00")  # its 9th: 07:00
    new_york = add_user(local_tz="America/New_York")  # 12:00 UTC (EDT)

    ticks = [at(2, 30), at(7), at(12), at(18)]
    queued = [[(c.user_id, c.local_date) for c in claim_at(book, clock, t, str(t))] for t in ticks]

    assert queued == [
        [(kolkata.id, TODAY)],
        [(pago_pago.id, date(2026, 3, 9))],
        [(new_york.id, TODAY)],
        [(kiritimati.id, TOMORROW)],
    ]


def test_a_user_created_within_the_grace_window_is_not_missed_by_the_next_tick(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    # The 08:30 tick has run; at 08:31 a user asks for 08:02, 29 minutes ago: "today".
    clock.at = at(8, 31)
    user = add_user(call_time="08:02")

    calls = claim_at(book, clock, at(8, 35), "tick-0835")

    # Either the next tick calls them, or they were told tomorrow: never promised, then missed.
    assert [c.status for c in book.calls_of_user(user.id)] in ([], ["queued"])
    assert [c.user_id for c in calls] == ([user.id] if user.next_local_date == TODAY else [])


def test_a_caught_up_slot_misses_a_call_later_than_the_grace_window_by_the_clock(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    # The scheduler was down from 07:20 to 08:17; it catches up from the 07:50 slot.
    user = add_user(call_time="07:25")
    clock.at = at(8, 17)

    calls = book.claim_daily_calls(at(7, 50), "tick-0750")

    assert calls == []
    assert [c.status for c in book.calls_of_user(user.id)] == ["missed"]


# --- retries ------------------------------------------------------------------------------


def test_an_unanswered_call_gets_a_retry_claimed_by_a_later_tick(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    user = add_user()
    call = placed_call(book, clock, user)
    clock.at = at(8, 3)

    ringing = book.apply_event(event("ringing", call=call.id, occurred_at=at(8, 0, 5)))
    answered = book.apply_event(event("in_progress", call=call.id, occurred_at=at(8, 0, 20)))
    unanswered = book.apply_event(event("no_answer", call=call.id, occurred_at=at(8, 2)))

    assert [ringing.outcome, answered.outcome, unanswered.outcome] == ["applied"] * 3
    assert ringing.retry is None
    assert answered.retry is None
    assert unanswered.call is not None
    assert (unanswered.call.status, unanswered.call.ended_at) == ("no_answer", at(8, 2))
    retry = unanswered.retry
    assert retry is not None
    assert retry.model_dump(include={"id", "attempt", "status", "due_at", "local_date"}) == {
        "id": call_id(user.id, TODAY, 2),
        "attempt": 2,
        "status": "scheduled",
        "due_at": at(8, 32),
        "local_date": TODAY,
    }
    assert (retry.user_id, retry.phone, retry.job_id, retry.provider_call_id) == (
        user.id,
        PHONE,
        None,
        None,
    )
    assert claim_at(book, clock, at(8, 30), "tick-0830") == []
    [queued] = claim_at(book, clock, at(8, 35), "tick-0835")
    assert (queued.id, queued.status, queued.job_id) == (retry.id, "queued", "tick-0835")
    assert [c.attempt for c in book.calls_of_user(user.id)] == [2, 1]


@pytest.mark.parametrize(
    ("ending", "retried"),
    [("no_answer", True), ("busy", True), ("failed", True), ("completed", False)],
)
def test_which_endings_earn_a_retry(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock, ending: str, retried: bool
) -> None:
    call = placed_call(book, clock, add_user())

    outcome = book.apply_event(event(ending, call=call.id, duration_secs=3, error="x"))

    assert outcome.outcome == "applied"
    assert outcome.call is not None
    assert (outcome.call.status, outcome.call.duration_secs, outcome.call.error) == (ending, 3, "x")
    assert (outcome.retry is not None) is retried


def test_no_retry_past_the_configured_retries(
    add_user: AddUser, engine: sa.Engine, clock: FixedClock
) -> None:
    book = SqlCallBook(engine, retries=1, clock=clock)
    user = add_user()
    first = placed_call(book, clock, user)
    retry = book.apply_event(event("busy", call=first.id, occurred_at=at(8, 1))).retry
    assert retry is not None
    [second] = claim_at(book, clock, at(8, 35), "tick-0835")
    assert book.start_placing(second.id)
    book.placed(second.id, "pc-second")

    outcome = book.apply_event(event("busy", call=second.id, occurred_at=at(8, 36)))

    assert outcome.outcome == "applied"
    assert outcome.retry is None
    assert [c.attempt for c in book.calls_of_user(user.id)] == [2, 1]


def test_no_retry_when_retries_are_off(
    add_user: AddUser, engine: sa.Engine, clock: FixedClock
) -> None:
    book = SqlCallBook(engine, retries=0, clock=clock)
    call = placed_call(book, clock, add_user())

    assert book.apply_event(event("no_answer", call=call.id)).retry is None


def test_no_retry_outside_the_calling_window(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    call = placed_call(book, clock, add_user(window_start="08:00", window_end="08:30"))

    outcome = book.apply_event(event("no_answer", call=call.id, occurred_at=at(8, 5)))

    assert outcome.outcome == "applied"
    assert outcome.retry is None


def test_a_retry_inside_the_calling_window_is_scheduled(
    add_user: AddUser, engine: sa.Engine, clock: FixedClock
) -> None:
    book = SqlCallBook(engine, retry_after=timedelta(minutes=20), clock=clock)
    call = placed_call(book, clock, add_user(window_start="08:00", window_end="08:30"))

    outcome = book.apply_event(event("no_answer", call=call.id, occurred_at=at(8, 5)))

    assert outcome.retry is not None
    assert outcome.retry.due_at == at(8, 25)


def test_no_retry_once_calls_are_switched_off(
    add_user: AddUser, users: SqlUsers, book: SqlCallBook, tenant: Tenant, clock: FixedClock
) -> None:
    user = add_user()
    call = placed_call(book, clock, user)
    users.set_preferences(user.id, preferences(call_enabled=False), tenant_id=tenant.id)

    assert book.apply_event(event("no_answer", call=call.id)).retry is None


def test_a_retry_later_than_the_grace_window_is_not_placed_outside_its_window(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    user = add_user(window_start="08:00", window_end="09:00")
    call = placed_call(book, clock, user)
    retry = book.apply_event(event("no_answer", call=call.id, occurred_at=at(8, 2))).retry
    assert retry is not None
    assert retry.due_at == at(8, 32)

    calls = claim_at(book, clock, at(9, 30), "tick-0930")  # down from 08:30 to 09:30

    assert calls == []


# --- apply_event --------------------------------------------------------------------------


def test_a_late_ringing_after_completed_is_ignored(
    add_user: AddUser, book: SqlCallBook, engine: sa.Engine, clock: FixedClock
) -> None:
    call = placed_call(book, clock, add_user())
    book.apply_event(event("completed", call=call.id, occurred_at=at(8, 4), duration_secs=180))

    late = book.apply_event(event("ringing", call=call.id, occurred_at=at(8, 0, 5)))

    assert late.outcome == "ignored"
    assert late.call is not None
    assert (late.call.status, late.call.duration_secs) == ("completed", 180)
    assert late.retry is None
    with engine.connect() as conn:
        outcomes = conn.execute(
            sa.select(CALL_EVENTS.c.status, CALL_EVENTS.c.outcome).order_by(CALL_EVENTS.c.id)
        ).all()
    assert [tuple(row) for row in outcomes] == [("completed", "applied"), ("ringing", "ignored")]


@pytest.mark.parametrize(
    ("first", "then", "outcome", "status"),
    [
        ("ringing", "in_progress", "applied", "in_progress"),
        ("in_progress", "ringing", "ignored", "in_progress"),
        ("in_progress", "completed", "applied", "completed"),
        ("no_answer", "completed", "ignored", "no_answer"),
        ("completed", "failed", "ignored", "completed"),
        ("ringing", "busy", "applied", "busy"),
    ],
)
def test_events_only_move_a_call_forward(
    add_user: AddUser,
    book: SqlCallBook,
    clock: FixedClock,
    first: str,
    then: str,
    outcome: str,
    status: str,
) -> None:
    call = placed_call(book, clock, add_user())
    assert book.apply_event(event(first, call=call.id)).outcome == "applied"

    result = book.apply_event(event(then, call=call.id))

    assert result.outcome == outcome
    assert result.call is not None
    assert result.call.status == status


def test_a_repeated_event_is_a_duplicate_and_changes_nothing(
    add_user: AddUser, book: SqlCallBook, engine: sa.Engine, clock: FixedClock
) -> None:
    call = placed_call(book, clock, add_user())
    first = book.apply_event(event("no_answer", call=call.id, key="evt-1"))
    clock.advance(timedelta(minutes=1))

    again = book.apply_event(event("no_answer", call=call.id, key="evt-1"))

    assert again.outcome == "duplicate"
    assert again.call == first.call
    assert again.retry is None
    assert count(engine, OUTBOUND_CALLS) == 2  # the call and its one retry
    with engine.connect() as conn:
        rows = conn.execute(sa.select(CALL_EVENTS.c.deliveries, CALL_EVENTS.c.outcome)).all()
    assert [tuple(row) for row in rows] == [(2, "applied")]


def test_an_event_of_an_unknown_call_is_recorded_as_such(
    book: SqlCallBook, engine: sa.Engine
) -> None:
    outcome = book.apply_event(event("ringing", call="call_nope", provider_call_id="pc-nope"))

    assert (outcome.outcome, outcome.call, outcome.retry) == ("unknown_call", None, None)
    with engine.connect() as conn:
        row = conn.execute(sa.select(CALL_EVENTS)).one()
    assert (row.event_key, row.call_id, row.provider_call_id) == (
        "call_nope:ringing",
        "call_nope",
        "pc-nope",
    )
    assert (row.status, row.outcome, row.payload) == (
        "ringing",
        "unknown_call",
        {"status": "ringing"},
    )


def test_an_event_without_our_id_is_found_by_the_providers_call_id(
    add_user: AddUser, book: SqlCallBook, engine: sa.Engine, clock: FixedClock
) -> None:
    user = add_user()
    call = placed_call(book, clock, user)

    outcome = book.apply_event(event("ringing", call=None, provider_call_id=f"pc-{user.id}"))

    assert outcome.outcome == "applied"
    assert outcome.call is not None
    assert (outcome.call.id, outcome.call.status) == (call.id, "ringing")
    with engine.connect() as conn:
        assert conn.execute(sa.select(CALL_EVENTS.c.call_id)).scalar_one() == call.id


def test_an_event_resolves_a_call_left_unknown(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    assert book.start_placing(call.id)
    assert book.start_placing(call.id) is False  # the worker died while placing
    unknown = book.get(call.id)
    assert unknown is not None
    assert unknown.status == "unknown"

    outcome = book.apply_event(
        event("completed", call=call.id, provider_call_id="pc-late", duration_secs=60)
    )

    assert outcome.outcome == "applied"
    assert outcome.call is not None
    assert (outcome.call.status, outcome.call.provider_call_id) == ("completed", "pc-late")
    assert outcome.call.ended_at == at(8, 1)


# --- placing ------------------------------------------------------------------------------


def test_placing_a_queued_call_moves_it_through_placing_to_placed(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    clock.at = at(8, 0, 2)

    assert book.start_placing(call.id) is True
    placing = book.get(call.id)
    clock.at = at(8, 0, 3)
    book.placed(call.id, "pc-1")
    placed = book.get(call.id)

    assert placing is not None
    assert placing.status == "placing"
    assert placed is not None
    assert (placed.status, placed.provider_call_id, placed.placed_at) == (
        "placed",
        "pc-1",
        at(8, 0, 3),
    )


def test_starting_to_place_a_call_left_placing_marks_it_unknown(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    assert book.start_placing(call.id)

    again = book.start_placing(call.id)
    third = book.start_placing(call.id)

    stored = book.get(call.id)
    assert (again, third) == (False, False)
    assert stored is not None
    assert stored.status == "unknown"
    assert stored.error == "placing was interrupted: the provider may have the call"


def test_starting_to_place_a_call_that_is_not_queued_changes_nothing(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    call = placed_call(book, clock, add_user())

    assert book.start_placing(call.id) is False
    assert book.start_placing("call_missing") is False
    assert book.get(call.id) == call


def test_placed_after_an_early_ringing_event_keeps_ringing(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    assert book.start_placing(call.id)
    assert book.apply_event(event("ringing", call=call.id)).outcome == "applied"

    book.placed(call.id, "pc-1")

    stored = book.get(call.id)
    assert stored is not None
    assert (stored.status, stored.provider_call_id) == ("ringing", "pc-1")


def test_placed_resolves_a_call_a_duplicate_placement_marked_unknown(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    # A redelivered tick republished the call: a second worker saw it `placing`.
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    assert book.start_placing(call.id)
    assert book.start_placing(call.id) is False

    book.placed(call.id, "pc-1")

    stored = book.get(call.id)
    assert stored is not None
    assert (stored.status, stored.provider_call_id) == ("placed", "pc-1")


def test_requeue_puts_a_placing_call_back_and_nothing_else(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    book.requeue(call.id, "not placing")
    unchanged = book.get(call.id)
    assert book.start_placing(call.id)

    book.requeue(call.id, "connection refused")

    requeued = book.get(call.id)
    assert unchanged == call
    assert requeued is not None
    assert (requeued.status, requeued.error) == ("queued", "connection refused")
    assert claim_at(book, clock, at(8), "tick-0800") == [requeued]
    assert book.start_placing(call.id) is True


@pytest.mark.parametrize("placing", [True, False], ids=["placing", "queued"])
def test_fail_ends_a_queued_or_placing_call(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock, placing: bool
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    if placing:
        assert book.start_placing(call.id)
    clock.at = at(8, 1)

    book.fail(call.id, "invalid number")

    failed = book.get(call.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.ended_at) == ("failed", "invalid number", at(8, 1))


def test_fail_with_unknown_outcome_leaves_the_call_for_review(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    add_user()
    [call] = claim_at(book, clock, at(8), "tick-0800")
    assert book.start_placing(call.id)

    book.fail(call.id, "read timeout", unknown=True)

    unknown = book.get(call.id)
    assert unknown is not None
    assert (unknown.status, unknown.error, unknown.ended_at) == ("unknown", "read timeout", None)


def test_fail_does_not_touch_a_call_the_provider_has(
    add_user: AddUser, book: SqlCallBook, clock: FixedClock
) -> None:
    call = placed_call(book, clock, add_user())
    book.apply_event(event("completed", call=call.id))
    completed = book.get(call.id)

    book.fail(call.id, "too late")

    assert book.get(call.id) == completed


# --- claim_callbacks ----------------------------------------------------------------------


def schedule_callback(
    engine: sa.Engine,
    tenant: Tenant,
    conversation_id: str,
    *,
    due_at: datetime,
    phone: str | None = PHONE,
    agent_id: str | None = None,
) -> None:
    """Record a callback the way the post-call pipeline does."""
    store = SqlCallStore(engine, clock=lambda: at(6))
    assert store.schedule_callback(
        tenant_id=tenant.id,
        conversation_id=conversation_id,
        due_at=due_at,
        reason="wants a call back",
        phone=phone,
        agent_id=agent_id,
    )


def callback_row(engine: sa.Engine, conversation_id: str) -> sa.Row[Any]:
    """The stored callback of a conversation."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(CALLBACKS).where(CALLBACKS.c.conversation_id == conversation_id)
        ).one()


def test_a_due_callback_with_a_number_becomes_a_queued_call(
    book: SqlCallBook, engine: sa.Engine, tenant: Tenant
) -> None:
    set_tenant_line(engine, tenant.id, "agent_outbound", "+14155550100")
    schedule_callback(engine, tenant, "conv-1", due_at=at(7, 55), agent_id="agent_caller")
    schedule_callback(engine, tenant, "conv-later", due_at=at(8, 5))

    calls = book.claim_callbacks(at(8), "cb-0800")

    assert calls == [
        OutboundCall(
            id=call_id("callback", tenant.id, "conv-1", 1),
            tenant_id=tenant.id,
            purpose="callback",
            conversation_id="conv-1",
            attempt=1,
            phone=PHONE,
            agent_id="agent_caller",
            caller_id="+14155550100",
            status="queued",
            due_at=at(7, 55),
            job_id="cb-0800",
        )
    ]
    claimed = callback_row(engine, "conv-1")
    assert (claimed.status, claimed.call_id) == ("queued", calls[0].id)
    assert callback_row(engine, "conv-later").status == "scheduled"


def test_a_callback_without_its_own_agent_uses_the_tenants(
    book: SqlCallBook, engine: sa.Engine, tenant: Tenant
) -> None:
    set_tenant_line(engine, tenant.id, "agent_outbound", "+14155550100")
    schedule_callback(engine, tenant, "conv-1", due_at=at(7, 55))

    [call] = book.claim_callbacks(at(8), "cb-0800")

    assert (call.agent_id, call.caller_id) == ("agent_outbound", "+14155550100")


def test_a_due_callback_without_a_number_is_unplaceable(
    book: SqlCallBook, engine: sa.Engine, tenant: Tenant
) -> None:
    schedule_callback(engine, tenant, "conv-1", due_at=at(7, 55), phone=None)

    calls = book.claim_callbacks(at(8), "cb-0800")

    assert calls == []
    row = callback_row(engine, "conv-1")
    assert (row.status, row.call_id) == ("unplaceable", None)
    assert count(engine, OUTBOUND_CALLS) == 0
    assert book.claim_callbacks(at(8, 5), "cb-0805") == []


def test_a_callback_is_claimed_once(book: SqlCallBook, engine: sa.Engine, tenant: Tenant) -> None:
    schedule_callback(engine, tenant, "conv-1", due_at=at(7, 55))
    first = book.claim_callbacks(at(8), "cb-0800")

    repeated = book.claim_callbacks(at(8), "cb-0800")
    later = book.claim_callbacks(at(8, 5), "cb-0805")

    assert len(first) == 1
    assert repeated == first
    assert later == []
    assert count(engine, OUTBOUND_CALLS) == 1
