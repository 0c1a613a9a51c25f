"""Named admin tokens: who may look at (``viewer``) or change (``admin``) the platform.

A token is shown once when it is made; only its SHA-256 digest is stored, like tenant
API keys. A revoked token stops working at once and stays listed, so the audit log's
names keep meaning something. ``SWITCHBOARD_ADMIN_TOKEN`` remains a bootstrap admin
outside this table.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

import sqlalchemy as sa

from contracts.fields import is_identifier
from infra.store.engine import PRESERVE_ROWCOUNT, transaction
from infra.store.jobs import utc_now
from infra.store.tables import ADMIN_TOKENS
from infra.store.tenants import hash_api_key

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
TOKEN_PREFIX = "sba_"  # noqa: S105  (a prefix, not a secret)


@dataclass(frozen=True)
class AdminToken:
    """A named admin token (without the token itself).

    Attributes:
        name: Who holds it, as the audit log names them.
        role: ``admin`` (may change things) or ``viewer`` (may look).
        created_at: When it was made.
        revoked_at: When it was revoked, if it was.
    """

    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class SqlAdminTokens:
    """Admin tokens in the SQL store.

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def add(self, name: str, role: Role) -> tuple[AdminToken, str]:
        """Make a token for ``name``; return it with the token (shown only now).

        Raises:
            ValueError: The name is not an id of letters, digits and ``._:-``, the role
                is unknown, or the name is taken (revoked names stay taken).
        """
        if not is_identifier(name):
            raise ValueError(f"invalid name {name!r}: use 1 to 128 letters, digits and ._:-")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use {' or '.join(ROLES)}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        with transaction(self._engine) as conn:
            taken = conn.execute(
                sa.select(ADMIN_TOKENS.c.id).where(ADMIN_TOKENS.c.name == name)
            ).first()
            if taken is not None:
                raise ValueError(f"an admin token named {name!r} exists already")
            conn.execute(
                sa.insert(ADMIN_TOKENS).values(
                    name=name, role=role, token_hash=hash_api_key(token), created_at=now
                )
            )
        return AdminToken(name, role, now, None), token

    def revoke(self, name: str) -> bool:
        """Revoke the token named ``name``; False when there is no active one."""
        with transaction(self._engine) as conn:
            revoked = conn.execute(
                sa.update(ADMIN_TOKENS)
                .where(ADMIN_TOKENS.c.name == name, ADMIN_TOKENS.c.revoked_at.is_(None))
                .values(revoked_at=self._clock()),
                execution_options=PRESERVE_ROWCOUNT,
            ).rowcount
        return bool(revoked)

    def tokens(self) -> list[AdminToken]:
        """Every token, active or revoked, by name."""
        with transaction(self._engine) as conn:
            rows = conn.execute(sa.select(ADMIN_TOKENS).order_by(ADMIN_TOKENS.c.name))
            return [_token(row) for row in rows]

    def for_token(self, token: str) -> AdminToken | None:
        """The active admin token ``token`` is, or None."""
        return self.for_digest(hash_api_key(token))

    def for_digest(self, token_hash: str) -> AdminToken | None:
        """The active admin token whose SHA-256 hex digest is ``token_hash``, or None."""
        with transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(ADMIN_TOKENS).where(
                    ADMIN_TOKENS.c.token_hash == token_hash,
                    ADMIN_TOKENS.c.revoked_at.is_(None),
                )
            ).first()
        return None if row is None else _token(row)


def _token(row: sa.Row[tuple[object, ...]]) -> AdminToken:
    return AdminToken(
        name=cast(str, row.name),
        role=cast(Role, row.role),
        created_at=cast(datetime, row.created_at),
        revoked_at=cast(datetime | None, row.revoked_at),
    )
