"""Deletion on request over HTTP: a call, a user; admins only, audited, idempotent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from falcon import testing

from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.bus.publishing import Envelope
from infra.dlq import DeadLetterDesk
from infra.erasure import DeskBin, Eraser
from infra.store.audit import SqlAudit
from infra.store.erasure import SqlErasure
from infra.store.tables import CALL_LOGS, USERS
from tests.builders import make_post_call_job
from tests.bus.support import kill
from tests.fakes import FixedClock
from tests.producers.api_support import ADMIN_TOKEN, assert_problem
from tests.producers.conftest import ClientFactory, Store, TenantFixture
from tests.seeds import Seeder, count

CALL = "/api/admin/calls/conv_1"
NUMBER = "+447700900123"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _reason(text: str = "DSR-42") -> str:
    return json.dumps({"reason": text})


def assert_private(result: testing.Result) -> None:
    """An erasure's answer names whom it forgot: never cached, never sniffed."""
    assert result.headers.get("cache-control") == "no-store"
    assert result.headers.get("x-content-type-options") == "nosniff"


@pytest.fixture
def seed(store: Store) -> Seeder:
    return Seeder(store.engine, FixedClock(datetime(2026, 5, 1, tzinfo=UTC)))


@pytest.fixture
def client(
    make_client: ClientFactory, store: Store, desk: DeadLetterDesk, dead_broker: SwitchboardBroker
) -> testing.TestClient:
    letters = DeadLetters(dead_broker.client, dead_broker.namespace)
    eraser = Eraser(
        SqlErasure(store.engine), store.vectors, SqlAudit(store.engine), DeskBin(letters, desk)
    )
    return make_client(desk=desk, eraser=eraser)


@pytest.fixture
def admin(store: Store) -> dict[str, str]:
    _, token = store.admins.add("ana", "admin")
    return _bearer(token)


def test_an_admin_deletes_a_call_with_its_vectors_and_dead_letters_then_finds_nothing(
    client: testing.TestClient,
    store: Store,
    seed: Seeder,
    acme: TenantFixture,
    admin: dict[str, str],
    dead_broker: SwitchboardBroker,
) -> None:
    seed.call("conv_1", tenant_id=acme.tenant.id, vectors=store.vectors, chunks=2)
    job = make_post_call_job(tenant_id=acme.tenant.id, conversation_id="conv_1")
    kill(dead_broker, Envelope.of(job))

    first = client.simulate_delete(CALL, query_string="tenant=acme", body=_reason(), headers=admin)
    second = client.simulate_delete(CALL, query_string="tenant=acme", body=_reason(), headers=admin)

    assert first.status_code == 200, first.text
    assert_private(first)
    assert first.json == {
        "outcome": "deleted",
        "subject": "call acme/conv_1",
        "deleted": {"jobs": 1, "job steps": 1, "call logs": 1, "vectors": 3, "dead letters": 1},
        "calls": ["conv_1"],
        "kept": [],
        "left": [],
    }
    assert count(store.engine, CALL_LOGS) == 0
    assert second.json["outcome"] == "nothing left"
    forgets = SqlAudit(store.engine).entries(action="forget")
    assert [(e.actor, e.target, e.reason) for e in forgets] == [
        ("ana", "call acme/conv_1", "DSR-42")
    ] * 2


def test_an_admin_deletes_a_user_and_the_calls_from_their_number(
    client: testing.TestClient,
    store: Store,
    seed: Seeder,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    user = seed.user(acme.tenant.id, phone=NUMBER)
    seed.call("conv_them", tenant_id=acme.tenant.id, caller_number=NUMBER)

    result = client.simulate_delete(f"/api/users/{user}", body=_reason(), headers=admin)

    assert result.status_code == 200, result.text
    assert result.json["outcome"] == "deleted"
    assert result.json["calls"] == ["conv_them"]
    assert result.json["deleted"]["users"] == 1
    assert_private(result)
    assert count(store.engine, USERS) == 0
    gone = client.simulate_get(f"/api/users/{user}", headers=admin)
    assert_problem(gone, 404)


def test_a_broker_that_cannot_be_read_leaves_the_deletion_partial(
    make_client: ClientFactory,
    store: Store,
    seed: Seeder,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    seed.call("conv_1", tenant_id=acme.tenant.id)

    result = make_client().simulate_delete(
        CALL, query_string="tenant=acme", body=_reason(), headers=admin
    )

    assert result.status_code == 200, result.text
    assert result.json["outcome"] == "partial"
    assert result.json["deleted"]["call logs"] == 1
    assert result.json["kept"][0].startswith("dead letters: broker unreachable")


@pytest.mark.parametrize(("path", "query"), [(CALL, "tenant=acme"), ("/api/users/usr_1", "")])
def test_only_an_admin_may_delete(
    make_client: ClientFactory,
    store: Store,
    acme: TenantFixture,
    path: str,
    query: str,
) -> None:
    client = make_client()
    _, viewer = store.admins.add("vera", "viewer")

    as_viewer = client.simulate_delete(
        path, query_string=query, body=_reason(), headers=_bearer(viewer)
    )
    as_tenant = client.simulate_delete(
        path, query_string=query, body=_reason(), headers=_bearer(acme.key)
    )
    anonymous = client.simulate_delete(path, query_string=query, body=_reason())

    assert_problem(as_viewer, 403)
    assert_problem(as_tenant, 403)
    assert_problem(anonymous, 401)
    for refused in (as_viewer, as_tenant, anonymous):
        assert_private(refused)
    assert SqlAudit(store.engine).entries() == []


def test_a_deletion_names_what_is_missing(make_client: ClientFactory, acme: TenantFixture) -> None:
    client = make_client()
    admin = _bearer(ADMIN_TOKEN)

    no_reason = client.simulate_delete(CALL, query_string="tenant=acme", body="{}", headers=admin)
    no_tenant = client.simulate_delete(CALL, body=_reason(), headers=admin)
    unknown = client.simulate_delete(
        CALL, query_string="tenant=nope", body=_reason(), headers=admin
    )

    assert assert_problem(no_reason, 422)["errors"][0]["field"] == "reason"
    assert assert_problem(no_tenant, 422)["errors"][0]["field"] == "tenant"
    unknown_problem = assert_problem(unknown, 422)
    assert unknown_problem["errors"][0] == {
        "field": "tenant",
        "message": "no tenant is named 'nope' (`switchboard tenants list`)",
    }
