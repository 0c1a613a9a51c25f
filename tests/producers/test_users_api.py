from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from falcon import testing

from tests.producers.api_support import ADMIN_TOKEN, NOW, assert_problem, error_fields
from tests.producers.conftest import ClientFactory, Store, TenantFixture

USERS = "/api/users"
NOW_UTC = datetime.fromtimestamp(NOW, tz=UTC)
"""2026-05-28 20:26:40 UTC: 21:26:40 in London (BST)."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /api/users`` body; ``overrides`` replace (or, as None, drop) fields."""
    body: dict[str, Any] = {
        "name": "Ada Lovelace",
        "phone": "+447700900123",
        "local_tz": "Europe/London",
        "call_time": "09:30",
        "call_enabled": True,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def add_user(
    client: testing.TestClient, token: str, params: dict[str, str] | None = None, **fields: Any
) -> str:
    result = client.simulate_post(
        USERS, json=new_user(**fields), headers=bearer(token), params=params
    )
    assert result.status_code == 201, result.text
    user_id: str = result.json["id"]
    return user_id


def preferences(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "call_enabled": True,
        "call_time": "09:30",
        "local_tz": "Europe/London",
    }
    return body | overrides


def test_a_tenant_adds_a_user_and_gets_201_with_its_location(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    result = client.simulate_post(USERS, json=new_user(), headers=bearer(acme.key))

    assert result.status_code == 201, result.text
    user_id = result.json["id"]
    assert result.json == {"id": user_id}
    assert result.headers["location"] == f"/api/users/{user_id}"
    assert (
        client.simulate_get(result.headers["location"], headers=bearer(acme.key)).status_code == 200
    )


def test_a_user_reads_back_with_preferences_and_the_next_call(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key, window_start="09:00", window_end="11:00")

    result = client.simulate_get(f"{USERS}/{user_id}", headers=bearer(acme.key))

    assert result.status_code == 200, result.text
    # A user's number: never cached, never sniffed.
    assert result.headers["cache-control"] == "no-store"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.json == {
        "id": user_id,
        "tenant_id": acme.tenant.id,
        "name": "Ada Lovelace",
        "phone": "+447700900123",
        "call_preferences": {
            "call_enabled": True,
            "call_time": "09:30:00",
            "local_tz": "Europe/London",
            "window_start": "09:00:00",
            "window_end": "11:00:00",
        },
        # 09:30 London was hours ago: the first call is tomorrow, 08:30 UTC (BST).
        "next_call_at": "2026-05-29T08:30:00+00:00",
        "next_local_date": "2026-05-29",
        "created_at": NOW_UTC.isoformat(),
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"local_tz": "Mars/Olympus_Mons"}, "local_tz"),
        ({"local_tz": "localtime"}, "local_tz"),
        ({"local_tz": "Factory"}, "local_tz"),
        ({"local_tz": 42}, "local_tz"),
        ({"call_time": "25:00"}, "call_time"),
        ({"call_time": "half past nine"}, "call_time"),
        ({"call_time": "09:30+01:00"}, "call_time"),
        ({"phone": "07700 900123"}, "phone"),
        ({"phone": "+0123"}, "phone"),
        ({"window_start": "09:00"}, "window_end"),
        ({"window_end": "11:00"}, "window_end"),
        ({"window_start": "10:00", "window_end": "11:00"}, "window_end"),
        ({"window_start": "11:00", "window_end": "09:00"}, "window_end"),
        ({"window_start": "9 o'clock", "window_end": "11:00"}, "window_start"),
        ({"call_enabled": "maybe"}, "call_enabled"),
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"name": ["Ada"]}, "name"),
        ({"phone": {"number": "+447700900123"}}, "phone"),
    ],
)
def test_an_invalid_user_is_a_422_naming_the_field(
    client: testing.TestClient, acme: TenantFixture, overrides: dict[str, Any], field: str
) -> None:
    result = client.simulate_post(USERS, json=new_user(**overrides), headers=bearer(acme.key))

    document = assert_problem(result, 422)
    assert error_fields(document) == [field]
    assert document["detail"].startswith(f"invalid field {field}: ")


def test_the_servers_localtime_is_refused_as_a_users_zone_saying_why(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    result = client.simulate_post(
        USERS, json=new_user(local_tz="localtime"), headers=bearer(acme.key)
    )

    [error] = assert_problem(result, 422)["errors"]
    assert error["field"] == "local_tz"
    assert "the server's own zone" in error["message"]
    assert "Europe/London" in error["message"]


@pytest.mark.parametrize("missing", ["name", "phone", "local_tz", "call_time"])
def test_a_user_without_a_required_field_is_a_422_naming_it(
    client: testing.TestClient, acme: TenantFixture, missing: str
) -> None:
    body = {k: v for k, v in new_user().items() if k != missing}

    document = assert_problem(client.simulate_post(USERS, json=body, headers=bearer(acme.key)), 422)

    assert document["errors"] == [{"field": missing, "message": "is required"}]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "body is not valid JSON"),
        (b"{", "body is not valid JSON"),
        (b"[]", "body must be a JSON object"),
        (b'"Ada"', "body must be a JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_422(
    client: testing.TestClient, acme: TenantFixture, body: bytes, detail: str
) -> None:
    result = client.simulate_post(USERS, body=body, headers=bearer(acme.key))

    problem = assert_problem(result, 422)
    assert problem["detail"].startswith(detail)
    assert [error["field"] for error in problem["errors"]] == ["body"]


def test_a_body_over_the_size_limit_is_a_413(
    make_client: ClientFactory, acme: TenantFixture
) -> None:
    client = make_client(max_body_bytes=64)

    result = client.simulate_post(USERS, json=new_user(name="A" * 100), headers=bearer(acme.key))

    assert_problem(result, 413)


def test_a_nul_in_a_name_is_a_422_naming_it(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    body = json.dumps(new_user(name="Ada\x00")).encode()

    document = assert_problem(client.simulate_post(USERS, body=body, headers=bearer(acme.key)), 422)

    assert error_fields(document) == ["name"]


def test_another_tenants_user_is_a_404_exactly_like_an_unknown_id(
    client: testing.TestClient, acme: TenantFixture, globex: TenantFixture
) -> None:
    user_id = add_user(client, acme.key)
    paths = [
        f"{USERS}/{user_id}",
        f"{USERS}/{user_id}/call-preferences",
        f"{USERS}/{user_id}/calls",
    ]

    for path in paths:
        hidden = client.simulate_get(path, headers=bearer(globex.key))
        unknown = client.simulate_get(path.replace(user_id, "usr_nobody"), headers=bearer(acme.key))
        assert assert_problem(hidden, 404)["title"] == assert_problem(unknown, 404)["title"]
    put = client.simulate_put(
        f"{USERS}/{user_id}/call-preferences",
        json=preferences(call_time="22:00"),
        headers=bearer(globex.key),
    )
    assert_problem(put, 404)
    mine = client.simulate_get(f"{USERS}/{user_id}/call-preferences", headers=bearer(acme.key))
    assert mine.json["call_time"] == "09:30:00", "globex's PUT changed nothing"


@pytest.mark.parametrize("user_id", ["usr nobody", "..", "u" * 129])
def test_an_id_that_is_not_an_id_is_a_404(
    client: testing.TestClient, acme: TenantFixture, user_id: str
) -> None:
    for path in (f"{USERS}/{user_id}", f"{USERS}/{user_id}/calls"):
        assert_problem(client.simulate_get(path, headers=bearer(acme.key)), 404)
    put = client.simulate_put(
        f"{USERS}/{user_id}/call-preferences", json=preferences(), headers=bearer(acme.key)
    )
    assert_problem(put, 404)


def test_a_tenant_lists_only_its_own_users_by_name(
    client: testing.TestClient, acme: TenantFixture, globex: TenantFixture
) -> None:
    zoe = add_user(client, acme.key, name="Zoe")
    ada = add_user(client, acme.key, name="Ada")
    add_user(client, globex.key, name="Bob")

    result = client.simulate_get(USERS, headers=bearer(acme.key))

    assert result.status_code == 200, result.text
    assert [u["id"] for u in result.json["users"]] == [ada, zoe]
    assert {u["tenant_id"] for u in result.json["users"]} == {acme.tenant.id}


def test_the_admin_must_name_the_tenant_of_a_new_user(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    result = client.simulate_post(USERS, json=new_user(), headers=bearer(ADMIN_TOKEN))

    document = assert_problem(result, 422)
    assert error_fields(document) == ["tenant"]
    assert "?tenant=NAME" in document["detail"]


def test_the_admin_naming_an_unknown_tenant_is_a_422_naming_it(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    result = client.simulate_post(
        USERS, json=new_user(), headers=bearer(ADMIN_TOKEN), params={"tenant": "initech"}
    )

    document = assert_problem(result, 422)
    assert error_fields(document) == ["tenant"]
    assert "initech" in document["detail"]


def test_the_admin_adds_a_user_to_the_named_tenant_and_sees_every_user(
    client: testing.TestClient, acme: TenantFixture, globex: TenantFixture
) -> None:
    admin_added = add_user(client, ADMIN_TOKEN, params={"tenant": "globex"}, name="Bob")
    acme_user = add_user(client, acme.key, name="Ada")

    everyone = client.simulate_get(USERS, headers=bearer(ADMIN_TOKEN)).json["users"]
    globex_only = client.simulate_get(
        USERS, headers=bearer(ADMIN_TOKEN), params={"tenant": "globex"}
    ).json["users"]

    assert [(u["id"], u["tenant_id"]) for u in everyone] == [
        (acme_user, acme.tenant.id),
        (admin_added, globex.tenant.id),
    ]
    assert [u["id"] for u in globex_only] == [admin_added]
    seen = client.simulate_get(f"{USERS}/{admin_added}", headers=bearer(globex.key))
    assert seen.json["tenant_id"] == globex.tenant.id


def test_a_tenants_key_acts_for_its_own_tenant_whatever_tenant_it_names(
    client: testing.TestClient, acme: TenantFixture, globex: TenantFixture
) -> None:
    user_id = add_user(client, acme.key, params={"tenant": "globex"})

    user = client.simulate_get(f"{USERS}/{user_id}", headers=bearer(acme.key)).json
    assert user["tenant_id"] == acme.tenant.id


def test_the_call_preferences_read_back_with_seconds(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key, call_time="07:05")

    result = client.simulate_get(f"{USERS}/{user_id}/call-preferences", headers=bearer(acme.key))

    assert result.status_code == 200, result.text
    assert result.json == {
        "call_enabled": True,
        "call_time": "07:05:00",
        "local_tz": "Europe/London",
        "window_start": None,
        "window_end": None,
    }


def test_putting_preferences_stores_them_and_moves_the_next_call(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key)
    path = f"{USERS}/{user_id}/call-preferences"

    result = client.simulate_put(
        path,
        json=preferences(
            call_time="22:15:30", local_tz="Europe/London", window_start="22:00", window_end="23:00"
        ),
        headers=bearer(acme.key),
    )

    assert result.status_code == 200, result.text
    assert result.json == {
        "call_enabled": True,
        "call_time": "22:15:30",
        "local_tz": "Europe/London",
        "window_start": "22:00:00",
        "window_end": "23:00:00",
        # 22:15:30 London is still ahead tonight: today, 21:15:30 UTC.
        "next_call_at": "2026-05-28T21:15:30+00:00",
        "next_local_date": "2026-05-28",
    }
    user = client.simulate_get(f"{USERS}/{user_id}", headers=bearer(acme.key)).json
    assert user["call_preferences"] == {
        k: v for k, v in result.json.items() if not k.startswith("next_")
    }
    assert user["next_call_at"] == "2026-05-28T21:15:30+00:00"


def test_putting_another_zone_moves_the_next_call_to_that_zones_time(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key)

    result = client.simulate_put(
        f"{USERS}/{user_id}/call-preferences",
        json=preferences(local_tz="Asia/Kolkata"),
        headers=bearer(acme.key),
    )

    # 09:30 in Kolkata (UTC+05:30) on the 29th, Kolkata's next morning: 04:00 UTC.
    assert result.json["next_call_at"] == "2026-05-29T04:00:00+00:00"
    assert result.json["next_local_date"] == "2026-05-29"


def test_switching_calls_off_leaves_no_next_call(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key)

    result = client.simulate_put(
        f"{USERS}/{user_id}/call-preferences",
        json=preferences(call_enabled=False),
        headers=bearer(acme.key),
    )

    assert result.status_code == 200, result.text
    assert result.json["call_enabled"] is False
    assert result.json["next_call_at"] is None
    user = client.simulate_get(f"{USERS}/{user_id}", headers=bearer(acme.key)).json
    assert (user["next_call_at"], user["next_local_date"]) == (None, None)
    assert user["call_preferences"]["call_enabled"] is False


def test_a_user_added_with_calls_off_has_no_next_call(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key, call_enabled=False)

    user = client.simulate_get(f"{USERS}/{user_id}", headers=bearer(acme.key)).json

    assert user["next_call_at"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (preferences(local_tz="Nowhere/Town"), "local_tz"),
        (preferences(local_tz="posixrules"), "local_tz"),
        (preferences(call_time="24:00"), "call_time"),
        (preferences(window_start="09:00"), "window_end"),
        (preferences(window_start="10:00", window_end="12:00"), "window_end"),
        ({"call_enabled": True, "local_tz": "Europe/London"}, "call_time"),
    ],
)
def test_invalid_preferences_are_a_422_naming_the_field_and_change_nothing(
    client: testing.TestClient, acme: TenantFixture, body: dict[str, Any], field: str
) -> None:
    user_id = add_user(client, acme.key)
    path = f"{USERS}/{user_id}/call-preferences"

    result = client.simulate_put(path, json=body, headers=bearer(acme.key))

    assert error_fields(assert_problem(result, 422)) == [field]
    after = client.simulate_get(path, headers=bearer(acme.key)).json
    assert (after["call_time"], after["local_tz"]) == ("09:30:00", "Europe/London")


def queue_todays_call(client: testing.TestClient, store: Store, acme: TenantFixture) -> str:
    """A user whose call time (21:20 London) was minutes ago, and today's call queued."""
    user_id = add_user(client, acme.key, call_time="21:20")
    queued = store.outbound.claim_daily_calls(NOW_UTC, "job-tick-1")
    assert [call.user_id for call in queued] == [user_id]
    return user_id


def test_a_users_calls_are_listed_newest_first(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    user_id = queue_todays_call(client, store, acme)
    today = store.outbound.calls_of_user(user_id)[0].id
    assert store.outbound.start_placing(today)
    store.outbound.placed(today, "prov-1")
    store.clock.advance(timedelta(days=1))
    store.outbound.claim_daily_calls(NOW_UTC + timedelta(days=1), "job-tick-2")

    result = client.simulate_get(f"{USERS}/{user_id}/calls", headers=bearer(acme.key))

    assert result.status_code == 200, result.text
    calls = result.json["calls"]
    assert [c["local_date"] for c in calls] == ["2026-05-29", "2026-05-28"]
    assert calls[1] == {
        "id": today,
        "status": "placed",
        "purpose": "daily",
        "local_date": "2026-05-28",
        "attempt": 1,
        "due_at": "2026-05-28T20:20:00+00:00",
        "placed_at": NOW_UTC.isoformat(),
        "provider_call_id": "prov-1",
        "ended_at": None,
        "duration_secs": None,
        "error": None,
    }
    assert calls[0]["status"] == "queued"
    assert calls[0]["due_at"] == "2026-05-29T20:20:00+00:00"
    limited = client.simulate_get(
        f"{USERS}/{user_id}/calls", headers=bearer(acme.key), params={"limit": "1"}
    )
    assert [c["local_date"] for c in limited.json["calls"]] == ["2026-05-29"]


def test_switching_calls_off_cancels_the_queued_call(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    user_id = queue_todays_call(client, store, acme)

    client.simulate_put(
        f"{USERS}/{user_id}/call-preferences",
        json=preferences(call_enabled=False, call_time="21:20"),
        headers=bearer(acme.key),
    )

    calls = client.simulate_get(f"{USERS}/{user_id}/calls", headers=bearer(acme.key)).json["calls"]
    assert [(c["status"], c["error"]) for c in calls] == [("cancelled", "calls switched off")]


def test_a_user_without_calls_has_an_empty_list(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    user_id = add_user(client, acme.key)

    result = client.simulate_get(f"{USERS}/{user_id}/calls", headers=bearer(acme.key))

    assert result.json == {"calls": []}


@pytest.mark.parametrize("limit", ["0", "501", "-1", "1.5", "ten", "\u0661"])
@pytest.mark.parametrize("path", ["calls", "list"])
def test_a_limit_out_of_range_is_a_422_naming_it(
    client: testing.TestClient, acme: TenantFixture, limit: str, path: str
) -> None:
    user_id = add_user(client, acme.key)
    url = f"{USERS}/{user_id}/calls" if path == "calls" else USERS

    result = client.simulate_get(url, headers=bearer(acme.key), params={"limit": limit})

    document = assert_problem(result, 422)
    assert error_fields(document) == ["limit"]
    assert "1 to 500" in document["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", USERS),
        ("GET", USERS),
        ("GET", f"{USERS}/usr_1"),
        ("GET", f"{USERS}/usr_1/call-preferences"),
        ("PUT", f"{USERS}/usr_1/call-preferences"),
        ("GET", f"{USERS}/usr_1/calls"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-key"}])
def test_every_users_route_needs_a_valid_token(
    client: testing.TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    result = client.simulate_request(method, path, headers=headers, json=new_user())

    assert_problem(result, 401)
    assert result.headers["www-authenticate"] == "Bearer"


def test_a_viewer_reads_users_but_cannot_add_one_or_change_preferences(
    client: testing.TestClient, acme: TenantFixture, store: Store
) -> None:
    user_id = add_user(client, acme.key)
    _, token = store.admins.add("vera", "viewer")
    _, admin = store.admins.add("ana", "admin")

    added = client.simulate_post(
        USERS,
        json=new_user(phone="+447700900124"),
        headers=bearer(token),
        params={"tenant": "acme"},
    )
    changed = client.simulate_put(
        f"{USERS}/{user_id}/call-preferences",
        json=preferences(call_enabled=False),
        headers=bearer(token),
    )
    read = client.simulate_get(f"{USERS}/{user_id}", headers=bearer(token))
    by_admin = client.simulate_put(
        f"{USERS}/{user_id}/call-preferences",
        json=preferences(call_enabled=False),
        headers=bearer(admin),
    )

    for refused in (added, changed):
        assert "viewer's: it may look, not change" in assert_problem(refused, 403)["detail"]
    assert read.status_code == 200
    assert by_admin.status_code == 200, by_admin.text
    assert by_admin.json["call_enabled"] is False
