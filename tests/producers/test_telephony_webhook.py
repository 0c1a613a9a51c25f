"""``POST /api/webhooks/callkaro``: signed status events, recorded, deduplicated, applied."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from falcon import testing

from contracts.users import NewUser
from contracts.values import OutboundCall
from infra.store.tables import CALL_EVENTS
from infra.vendors.telephony_signing import SIGNATURE_HEADER, sign
from tests.producers.api_support import NOW, assert_problem, error_fields
from tests.producers.conftest import TELEPHONY_SECRET, ClientFactory, Store, TenantFixture

PATH = "/api/webhooks/callkaro"


def _post(
    client: testing.TestClient,
    payload: Any,
    *,
    at: int | None = NOW,
    secret: str = TELEPHONY_SECRET,
    signature: str | None = None,
) -> testing.Result:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = signature if signature is not None else sign(secret, body, timestamp=at)
    return client.simulate_post(
        PATH, body=body, headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"}
    )


def _event(call: OutboundCall, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "call_id": f"prov-{call.id}",
        "status": status,
        "metadata": {"call_id": call.id, "user_id": call.user_id},
        "timestamp": "2026-05-28T20:26:40Z",
        **fields,
    }


@pytest.fixture
def placed_call(store: Store, acme: TenantFixture) -> OutboundCall:
    """A daily call of a user due now, placed with the provider."""
    user = store.users.add_user(
        acme.tenant.id,
        NewUser(
            name="Ada",
            phone="+14155550100",
            local_tz="UTC",
            call_time=(store.clock() - timedelta(minutes=1)).time(),
        ),
    )
    [call] = store.outbound.claim_daily_calls(store.clock(), "job_tick")
    assert call.user_id == user.id
    assert store.outbound.start_placing(call.id)
    store.outbound.placed(call.id, f"prov-{call.id}")
    return call


def _events(store: Store) -> list[tuple[str, str, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(CALL_EVENTS.c.status, CALL_EVENTS.c.outcome, CALL_EVENTS.c.deliveries)
        )
        return [(row.status, row.outcome, row.deliveries) for row in rows]


def test_the_calls_statuses_follow_the_providers_events(
    client: testing.TestClient, store: Store, placed_call: OutboundCall
) -> None:
    for status in ("ringing", "in_progress"):
        result = _post(client, _event(placed_call, status))
        assert result.status_code == 200, result.text
        assert result.json["status"] == status
    ended = _post(client, _event(placed_call, "completed", duration=63.4))

    assert ended.json == {
        "success": True,
        "call_id": placed_call.id,
        "status": "completed",
        "outcome": "applied",
        "retry": None,
        "message": "Call updated successfully",
    }
    call = store.outbound.get(placed_call.id)
    assert call is not None
    assert (call.status, call.duration_secs) == ("completed", 63)
    assert call.ended_at is not None
    assert call.ended_at.isoformat() == "2026-05-28T20:26:40+00:00"


def test_a_repeated_event_is_a_duplicate_and_a_late_one_is_ignored(
    client: testing.TestClient, store: Store, placed_call: OutboundCall
) -> None:
    _post(client, _event(placed_call, "completed"))

    again = _post(client, _event(placed_call, "completed"))
    late = _post(client, _event(placed_call, "ringing"))

    assert (again.json["outcome"], again.json["status"]) == ("duplicate", "completed")
    assert (late.json["outcome"], late.json["status"]) == ("ignored", "completed")
    assert sorted(_events(store)) == [("completed", "applied", 2), ("ringing", "ignored", 1)]


def test_an_unanswered_call_gets_its_retry_scheduled(
    client: testing.TestClient, store: Store, placed_call: OutboundCall
) -> None:
    result = _post(client, _event(placed_call, "no_answer"), at=NOW)

    assert result.json["outcome"] == "applied"
    retry = store.outbound.get(result.json["retry"])
    assert retry is not None
    assert (retry.attempt, retry.status, retry.local_date) == (
        2,
        "scheduled",
        placed_call.local_date,
    )


def test_an_event_for_an_unknown_call_is_recorded_and_answered_as_before(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    result = _post(client, {"call_id": "prov-nobody", "status": "completed"})

    assert result.status_code == 200
    assert result.json == {"success": False, "error": "Call not found", "outcome": "unknown_call"}
    assert _events(store) == [("completed", "unknown_call", 1)]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"call_id": "p1", "status": "exploded"}, "status"),
        ({"status": "ringing"}, "call_id"),
        ({"call_id": "p1", "status": "completed", "duration": -4}, "duration"),
        ({"call_id": "p1", "status": "completed", "timestamp": "yesterday"}, "timestamp"),
    ],
)
def test_a_bad_event_is_a_422_naming_the_field(
    client: testing.TestClient, payload: dict[str, Any], field: str
) -> None:
    document = assert_problem(_post(client, payload), 422)

    assert field in error_fields(document)


@pytest.mark.parametrize(
    ("signature", "at", "secret"),
    [
        (None, NOW, "another-secret"),
        (None, NOW - 3600, TELEPHONY_SECRET),
        (None, NOW + 3600, TELEPHONY_SECRET),
        ("t=abc,v1=00", NOW, TELEPHONY_SECRET),
        ("", NOW, TELEPHONY_SECRET),
        ("t=1,v1=\u00e9", NOW, TELEPHONY_SECRET),
    ],
)
def test_a_bad_signature_is_a_401_and_changes_nothing(
    client: testing.TestClient,
    store: Store,
    placed_call: OutboundCall,
    signature: str | None,
    at: int,
    secret: str,
) -> None:
    result = _post(
        client, _event(placed_call, "completed"), at=at, secret=secret, signature=signature
    )

    assert_problem(result, 401)
    assert _events(store) == []


def test_a_body_signed_without_a_timestamp_is_accepted(
    client: testing.TestClient, placed_call: OutboundCall
) -> None:
    result = _post(client, _event(placed_call, "ringing"), at=None)

    assert result.json["outcome"] == "applied"


def test_without_a_secret_the_webhook_is_unavailable(
    make_client: ClientFactory, acme: TenantFixture
) -> None:
    client = make_client(telephony_secret=None)

    document = assert_problem(_post(client, {"call_id": "p", "status": "ringing"}), 503)

    assert "CALLKARO_WEBHOOK_SECRET" in document["detail"]
