"""Named admin tokens: made once, stored hashed, revoked for good."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from infra.store.admins import TOKEN_PREFIX, SqlAdminTokens
from infra.store.tables import ADMIN_TOKENS


def test_a_token_is_returned_once_and_stored_only_as_a_hash(engine: sa.Engine) -> None:
    admins = SqlAdminTokens(engine)

    made, token = admins.add("ana", "admin")

    assert token.startswith(TOKEN_PREFIX)
    assert (made.name, made.role, made.revoked_at) == ("ana", "admin", None)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(ADMIN_TOKENS.c.token_hash)).scalar_one()
    assert token not in stored
    found = admins.for_token(token)
    assert found is not None
    assert (found.name, found.role) == ("ana", "admin")
    assert admins.for_token(token + "x") is None


def test_a_revoked_token_stops_working_and_stays_listed(engine: sa.Engine) -> None:
    admins = SqlAdminTokens(engine)
    _, token = admins.add("bo", "viewer")

    assert admins.revoke("bo") is True

    assert admins.for_token(token) is None
    assert admins.revoke("bo") is False
    [listed] = admins.tokens()
    assert (listed.name, listed.role) == ("bo", "viewer")
    assert listed.revoked_at is not None


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [
        ("ana", "admin", "exists already"),
        ("has space", "admin", "invalid name"),
        ("cy", "root", "unknown role"),
    ],
)
def test_a_bad_or_taken_name_or_an_unknown_role_is_refused(
    engine: sa.Engine, name: str, role: str, message: str
) -> None:
    admins = SqlAdminTokens(engine)
    admins.add("ana", "admin")

    with pytest.raises(ValueError, match=message):
        admins.add(name, role)  # type: ignore[arg-type]
