from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from infra.store.records import AgentBinding, Tenant
from infra.store.tables import TENANTS
from infra.store.tenants import SqlTenantDirectory


def test_a_new_tenant_gets_a_key_that_resolves_to_it_and_only_its_hash_is_stored(
    engine: sa.Engine, tenants: SqlTenantDirectory
) -> None:
    tenant, api_key = tenants.add_tenant("acme", timezone="America/New_York")

    assert api_key.startswith("sb_")
    assert len(api_key) > 40
    assert tenants.tenant_for_key(api_key) == tenant
    assert tenants.tenant_for_key(api_key + "x") is None
    assert tenant.timezone == "America/New_York"
    assert tenant.created_at.utcoffset() is not None
    with engine.connect() as conn:
        stored = conn.execute(sa.select(TENANTS.c.api_key_hash)).scalar_one()
    assert stored == hashlib.sha256(api_key.encode()).hexdigest()


def test_tenant_names_are_unique(tenants: SqlTenantDirectory) -> None:
    tenants.add_tenant("acme")

    with pytest.raises(ValueError, match="'acme' already exists"):
        tenants.add_tenant("acme", timezone="Europe/Paris")

    assert [t.name for t, _ in tenants.list_tenants()] == ["acme"]


def test_an_unknown_time_zone_is_refused_by_name(tenants: SqlTenantDirectory) -> None:
    with pytest.raises(ValueError, match="'Mars/Olympus_Mons'"):
        tenants.add_tenant("acme", timezone="Mars/Olympus_Mons")

    assert tenants.list_tenants() == []


def test_rotating_a_key_invalidates_the_old_one(tenants: SqlTenantDirectory) -> None:
    tenant, old_key = tenants.add_tenant("acme")

    new_key = tenants.rotate_key("acme")

    assert new_key != old_key
    assert tenants.tenant_for_key(old_key) is None
    assert tenants.tenant_for_key(new_key) == tenant


def test_rotating_the_key_of_an_unknown_tenant_raises_lookup_error(
    tenants: SqlTenantDirectory,
) -> None:
    with pytest.raises(LookupError, match="'ghost'"):
        tenants.rotate_key("ghost")


def test_tenants_are_listed_by_name_with_their_agents(tenants: SqlTenantDirectory) -> None:
    zeta, _ = tenants.add_tenant("zeta")
    acme, _ = tenants.add_tenant("acme", timezone="Asia/Kolkata")
    tenants.bind_agent(acme.id, "agent_b", kind="health_check")
    tenants.bind_agent(acme.id, "agent_a", kind="general")

    assert tenants.list_tenants() == [
        (acme, [("agent_a", "general"), ("agent_b", "health_check")]),
        (zeta, []),
    ]
    assert tenants.tenant_by_name("acme") == acme
    assert tenants.tenant_by_name("nobody") is None


def test_an_agent_resolves_to_its_tenant_and_rebinding_moves_it(
    tenants: SqlTenantDirectory, tenant: Tenant
) -> None:
    other, _ = tenants.add_tenant("globex")
    tenants.bind_agent(tenant.id, "agent_1", kind="general")
    tenants.bind_agent(tenant.id, "agent_1", kind="general")

    assert tenants.agent("agent_1") == AgentBinding(
        agent_id="agent_1", kind="general", tenant=tenant
    )

    tenants.bind_agent(other.id, "agent_1", kind="health_check")

    assert tenants.agent("agent_1") == AgentBinding(
        agent_id="agent_1", kind="health_check", tenant=other
    )
    assert tenants.agent("agent_unknown") is None


def test_binding_an_agent_to_an_unknown_tenant_raises_lookup_error(
    tenants: SqlTenantDirectory,
) -> None:
    with pytest.raises(LookupError, match="no tenant"):
        tenants.bind_agent("missing", "agent_1", kind="general")
