"""Console sessions: stored hashed, expiring, closed at logout, carrying one notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from infra.store.sessions import SqlConsoleSessions
from infra.store.tables import CONSOLE_SESSIONS
from tests.fakes import FixedClock

T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def test_a_session_is_found_by_its_id_which_is_stored_only_as_a_hash(engine: sa.Engine) -> None:
    sessions = SqlConsoleSessions(engine, clock=FixedClock(T0))

    session_id, opened = sessions.open(
        admin="ana", role="admin", token="sba_secret", ttl=timedelta(hours=1)
    )

    found = sessions.get(session_id)
    assert found == opened
    assert (found.admin, found.role, found.expires_at) == ("ana", "admin", T0 + timedelta(hours=1))
    assert len(found.csrf) >= 32
    with engine.connect() as conn:
        [row] = conn.execute(sa.select(CONSOLE_SESSIONS)).all()
    assert session_id not in (row.id, row.token_hash)
    assert "sba_secret" not in (row.id, row.token_hash)
    assert sessions.get(session_id + "x") is None


def test_a_session_expires_and_expired_rows_go_when_the_next_opens(engine: sa.Engine) -> None:
    clock = FixedClock(T0)
    sessions = SqlConsoleSessions(engine, clock=clock)
    old, _ = sessions.open(admin="ana", role="admin", token="t1", ttl=timedelta(minutes=5))

    clock.advance(timedelta(minutes=5))
    assert sessions.get(old) is None
    sessions.open(admin="bo", role="viewer", token="t2", ttl=timedelta(minutes=5))

    with engine.connect() as conn:
        admins = conn.execute(sa.select(CONSOLE_SESSIONS.c.admin)).scalars().all()
    assert admins == ["bo"]


def test_logout_closes_the_session_once(engine: sa.Engine) -> None:
    sessions = SqlConsoleSessions(engine, clock=FixedClock(T0))
    session_id, _ = sessions.open(admin="ana", role="admin", token="t", ttl=timedelta(hours=1))

    assert sessions.close(session_id) is True

    assert sessions.get(session_id) is None
    assert sessions.close(session_id) is False


def test_a_notice_is_read_once(engine: sa.Engine) -> None:
    sessions = SqlConsoleSessions(engine, clock=FixedClock(T0))
    session_id, _ = sessions.open(admin="ana", role="admin", token="t", ttl=timedelta(hours=1))

    sessions.leave_notice(session_id, "replayed 1")

    assert sessions.take_notice(session_id) == "replayed 1"
    assert sessions.take_notice(session_id) is None
