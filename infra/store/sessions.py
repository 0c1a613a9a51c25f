"""Console sessions: who logged in to ``/admin``, until when, and their CSRF token.

A login makes a random session id, sent once as the cookie; only its SHA-256 digest is
stored, like API keys, so a copy of the table opens no session. Each session keeps the
digest of the admin token it logged in with: the console checks that token is still
active on every request, so revoking a token ends its sessions at once. Sessions live
in the database, not in a worker's memory, so every gunicorn worker and API replica
sees the same ones; expired rows are deleted as new sessions are opened.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa

from infra.store.admins import Role
from infra.store.engine import PRESERVE_ROWCOUNT, transaction
from infra.store.jobs import utc_now
from infra.store.tables import CONSOLE_SESSIONS
from infra.store.tenants import hash_api_key


@dataclass(frozen=True)
class ConsoleSession:
    """An open console session.

    Attributes:
        admin: The admin token's name, as the audit log names them.
        role: ``admin`` or ``viewer``.
        token_hash: The digest of the token the session logged in with.
        csrf: The token every change made through the session must carry.
        expires_at: When it ends.
    """

    admin: str
    role: Role
    token_hash: str
    csrf: str
    expires_at: datetime


class SqlConsoleSessions:
    """Console sessions in the SQL store.

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def open(
        self, *, admin: str, role: Role, token: str, ttl: timedelta
    ) -> tuple[str, ConsoleSession]:
        """Start a session for the holder of ``token``: its id (the cookie's value) and it."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(
            admin=admin,
            role=role,
            token_hash=hash_api_key(token),
            csrf=secrets.token_urlsafe(32),
            expires_at=now + ttl,
        )
        with transaction(self._engine) as conn:
            conn.execute(sa.delete(CONSOLE_SESSIONS).where(CONSOLE_SESSIONS.c.expires_at <= now))
            conn.execute(
                sa.insert(CONSOLE_SESSIONS).values(
                    id=hash_api_key(session_id),
                    admin=admin,
                    role=role,
                    token_hash=session.token_hash,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return session_id, session

    def get(self, session_id: str) -> ConsoleSession | None:
        """The open, unexpired session with this id, or None."""
        with transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(CONSOLE_SESSIONS).where(
                    CONSOLE_SESSIONS.c.id == hash_api_key(session_id),
                    CONSOLE_SESSIONS.c.expires_at > self._clock(),
                )
            ).first()
        if row is None:
            return None
        return ConsoleSession(
            admin=cast(str, row.admin),
            role=cast(Role, row.role),
            token_hash=cast(str, row.token_hash),
            csrf=cast(str, row.csrf),
            expires_at=cast(datetime, row.expires_at),
        )

    def close(self, session_id: str) -> bool:
        """End the session (logout); False when there was none."""
        with transaction(self._engine) as conn:
            closed = conn.execute(
                sa.delete(CONSOLE_SESSIONS).where(
                    CONSOLE_SESSIONS.c.id == hash_api_key(session_id)
                ),
                execution_options=PRESERVE_ROWCOUNT,
            ).rowcount
        return bool(closed)

    def leave_notice(self, session_id: str, notice: str) -> None:
        """Keep one line for the session's next page (the outcome of a change)."""
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(CONSOLE_SESSIONS)
                .where(CONSOLE_SESSIONS.c.id == hash_api_key(session_id))
                .values(notice=notice)
            )

    def take_notice(self, session_id: str) -> str | None:
        """The line left for this page, removed as it is read."""
        key = hash_api_key(session_id)
        with transaction(self._engine) as conn:
            notice = conn.execute(
                sa.select(CONSOLE_SESSIONS.c.notice).where(CONSOLE_SESSIONS.c.id == key)
            ).scalar()
            if notice is not None:
                conn.execute(
                    sa.update(CONSOLE_SESSIONS)
                    .where(CONSOLE_SESSIONS.c.id == key)
                    .values(notice=None)
                )
        return None if notice is None else str(notice)
