"""Tenants, their voice agents and API keys, in the SQL store.

API keys are ``sb_`` + 32 random bytes (URL-safe base64) and only their SHA-256 hex
digest is stored: for keys of this entropy a fast hash is enough (there is nothing to
brute-force), and lookups stay a single indexed query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from infra.store.engine import PRESERVE_ROWCOUNT, dialect_insert, transaction
from infra.store.records import AgentBinding, AgentKind, Tenant
from infra.store.tables import AGENTS, TENANTS

API_KEY_PREFIX = "sb_"


def new_api_key() -> str:
    """A fresh, random API key."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key (SHA-256, hex)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA time zone.

    Raises:
        ValueError: The zone is unknown or malformed; the message names it.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name)") from exc
    return name


def _tenant(row: sa.Row[tuple[object, ...]]) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        created_at=row.created_at,
    )


class SqlTenantDirectory:
    """``TenantDirectory`` on the SQL store. Each method is one short transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add_tenant(self, name: str, *, timezone: str = "UTC") -> tuple[Tenant, str]:
        """Create a tenant; return it with its new API key (shown once, stored hashed).

        Raises:
            ValueError: A tenant with this name exists, or the time zone is unknown.
        """
        validate_timezone(timezone)
        tenant = Tenant(
            id=uuid.uuid4().hex, name=name, timezone=timezone, created_at=datetime.now(UTC)
        )
        api_key = new_api_key()
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, TENANTS).values(
                id=tenant.id,
                name=name,
                timezone=timezone,
                api_key_hash=hash_api_key(api_key),
                created_at=tenant.created_at,
            )
            result = conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["name"]),
                execution_options=PRESERVE_ROWCOUNT,
            )
            if result.rowcount != 1:
                raise ValueError(f"a tenant named {name!r} already exists")
        return tenant, api_key

    def bind_agent(self, tenant_id: str, agent_id: str, *, kind: AgentKind) -> None:
        """Bind an agent id to a tenant (rebinding moves it; idempotent).

        Raises:
            LookupError: No tenant has this id.
        """
        with transaction(self._engine) as conn:
            exists = conn.execute(sa.select(TENANTS.c.id).where(TENANTS.c.id == tenant_id))
            if exists.first() is None:
                raise LookupError(f"no tenant with id {tenant_id!r}")
            stmt = dialect_insert(conn, AGENTS).values(
                agent_id=agent_id, tenant_id=tenant_id, kind=kind
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["agent_id"],
                    set_={"tenant_id": stmt.excluded.tenant_id, "kind": stmt.excluded.kind},
                )
            )

    def rotate_key(self, name: str) -> str:
        """Issue a new API key for the tenant named ``name``; the old one stops working.

        Raises:
            LookupError: No tenant has this name.
        """
        api_key = new_api_key()
        with transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(TENANTS)
                .where(TENANTS.c.name == name)
                .values(api_key_hash=hash_api_key(api_key))
            )
            if result.rowcount != 1:
                raise LookupError(f"no tenant named {name!r}")
        return api_key

    def set_call_line(self, name: str, *, agent_id: str | None, caller_id: str | None) -> None:
        """Set the voice agent and caller id the tenant's outbound calls use (None: defaults).

        Raises:
            LookupError: No tenant has this name.
        """
        with transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(TENANTS)
                .where(TENANTS.c.name == name)
                .values(call_agent_id=agent_id, caller_id=caller_id)
            )
            if result.rowcount != 1:
                raise LookupError(f"no tenant named {name!r}")

    def call_line(self, name: str) -> tuple[str | None, str | None]:
        """The tenant's (outbound agent, caller id); (None, None) for the defaults.

        Raises:
            LookupError: No tenant has this name.
        """
        with transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(TENANTS.c.call_agent_id, TENANTS.c.caller_id).where(
                    TENANTS.c.name == name
                )
            ).first()
        if row is None:
            raise LookupError(f"no tenant named {name!r}")
        return row.call_agent_id, row.caller_id

    def list_tenants(self) -> list[tuple[Tenant, list[tuple[str, AgentKind]]]]:
        """Every tenant, by name, with its (agent id, kind) bindings by agent id."""
        with transaction(self._engine) as conn:
            tenants = conn.execute(sa.select(TENANTS).order_by(TENANTS.c.name)).all()
            agents = conn.execute(
                sa.select(AGENTS.c.tenant_id, AGENTS.c.agent_id, AGENTS.c.kind).order_by(
                    AGENTS.c.agent_id
                )
            ).all()
        by_tenant: dict[str, list[tuple[str, AgentKind]]] = {}
        for tenant_id, agent_id, kind in agents:
            by_tenant.setdefault(tenant_id, []).append((agent_id, cast(AgentKind, kind)))
        return [(_tenant(row), by_tenant.get(row.id, [])) for row in tenants]

    def tenant_by_name(self, name: str) -> Tenant | None:
        """The tenant named ``name``, or None."""
        with transaction(self._engine) as conn:
            row = conn.execute(sa.select(TENANTS).where(TENANTS.c.name == name)).first()
        return None if row is None else _tenant(row)

    def agent(self, agent_id: str) -> AgentBinding | None:
        """Resolve a webhook's agent id to its binding, or None when unknown."""
        query = (
            sa.select(TENANTS, AGENTS.c.kind)
            .join(AGENTS, AGENTS.c.tenant_id == TENANTS.c.id)
            .where(AGENTS.c.agent_id == agent_id)
        )
        with transaction(self._engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return AgentBinding(agent_id=agent_id, kind=cast(AgentKind, row.kind), tenant=_tenant(row))

    def tenant_for_key(self, api_key: str) -> Tenant | None:
        """Resolve a bearer token to its tenant, or None.

        The lookup is by the digest (which reveals nothing about the key); the final
        comparison is constant-time all the same.
        """
        digest = hash_api_key(api_key)
        with transaction(self._engine) as conn:
            row = conn.execute(sa.select(TENANTS).where(TENANTS.c.api_key_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.api_key_hash, digest):
            return None
        return _tenant(row)
