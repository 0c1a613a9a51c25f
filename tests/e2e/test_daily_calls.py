"""End to end: users → tick → simulated calls → signed status webhooks → call rows.

The API, the worker and the scheduler run as real processes; the telephony simulator
(the default adapter) plays each call's status webhooks back to the API over HTTP,
signed with the secret the API reads from the shared data directory.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from infra.store.engine import create_engine
from infra.store.tables import CALL_EVENTS
from infra.vendors.telephony_signing import SIGNATURE_HEADER, sign, simulator_secret
from tests.e2e.processes import ADMIN, Stack, StackFactory

pytestmark = pytest.mark.e2e

BUSY = "+442079460002"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def _add_user(stack: Stack, name: str, phone: str, zone: str, minutes_ago: int) -> str:
    local = datetime.now(UTC).astimezone(ZoneInfo(zone)) - timedelta(minutes=minutes_ago)
    response = httpx.post(
        f"{stack.url}/api/users",
        params={"tenant": "acme"},
        headers=ADMIN_HEADERS,
        json={
            "name": name,
            "phone": phone,
            "local_tz": zone,
            "call_time": local.strftime("%H:%M"),
            "call_enabled": True,
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


def _calls(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.url}/api/users/{user_id}/calls", headers=ADMIN_HEADERS, timeout=10
    )
    response.raise_for_status()
    calls: list[dict[str, Any]] = response.json()["calls"]
    return calls


def _wait_ended(stack: Stack, user_ids: list[str], timeout_s: float = 45) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    ended = {"completed", "busy", "no_answer", "failed"}
    while time.monotonic() < deadline:
        seen = {u: _calls(stack, u) for u in user_ids}
        if all(any(c["status"] in ended for c in calls) for calls in seen.values()):
            return seen
        time.sleep(0.3)
    pytest.fail(f"calls did not end in {timeout_s} s: {seen}\n{stack.tail_logs()}")


def test_due_users_are_called_once_and_status_webhooks_update_their_calls(
    stack_factory: StackFactory, redis_url: str, tmp_path: Path
) -> None:
    stack = stack_factory(
        redis_url,
        f"sqlite:///{tmp_path / 'e2e.db'}",
        {"SWITCHBOARD_SIMULATOR__OUTCOMES": json.dumps({BUSY: "busy"})},
    )
    due = {
        "kolkata": _add_user(stack, "Asha", "+919876543210", "Asia/Kolkata", 1),
        "london": _add_user(stack, "Tom", BUSY, "Europe/London", 1),
        "new_york": _add_user(stack, "Maria", "+12125550143", "America/New_York", 1),
    }
    later = _add_user(stack, "Noah", "+61291234567", "Australia/Sydney", 180)

    trigger = httpx.post(f"{stack.url}/api/queue/trigger", headers=ADMIN_HEADERS, timeout=10)
    assert trigger.status_code == 202, trigger.text
    again = httpx.post(f"{stack.url}/api/queue/trigger", headers=ADMIN_HEADERS, timeout=10)
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) >= 1

    calls = _wait_ended(stack, list(due.values()))
    firsts = {name: [c for c in calls[u] if c["attempt"] == 1] for name, u in due.items()}
    assert {name: [c["status"] for c in rows] for name, rows in firsts.items()} == {
        "kolkata": ["completed"],
        "london": ["busy"],
        "new_york": ["completed"],
    }
    for rows in firsts.values():
        assert rows[0]["provider_call_id"].startswith("sim_")
        assert rows[0]["placed_at"] is not None
    # The busy call's retry is a due row of the same local date, unless 30 minutes after
    # the busy call ends falls on the next local date in London (a call due just before
    # local midnight): then there is no retry.
    retries = [c for c in calls[due["london"]] if c["attempt"] == 2]
    busy = firsts["london"][0]
    retry_due = datetime.fromisoformat(busy["ended_at"]) + timedelta(minutes=30)
    if retry_due.astimezone(ZoneInfo("Europe/London")).date().isoformat() != busy["local_date"]:
        assert retries == []
    else:
        assert [r["status"] for r in retries] == ["scheduled"]
        assert retries[0]["local_date"] == firsts["london"][0]["local_date"]
    # Called hours after their call time: first called tomorrow, nothing today.
    assert _calls(stack, later) == []

    # Every status event was recorded; a repeated one changes nothing.
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            recorded = conn.execute(sa.select(sa.func.count()).select_from(CALL_EVENTS))
            assert recorded.scalar_one() >= 7  # ringing, in_progress, completed, twice; busy
    finally:
        engine.dispose()
    done = firsts["kolkata"][0]
    body = json.dumps(
        {
            "call_id": done["provider_call_id"],
            "status": "ringing",
            "metadata": {"call_id": done["id"]},
        }
    ).encode()
    secret = simulator_secret(stack.data_dir)
    late = httpx.post(
        f"{stack.url}/api/webhooks/callkaro",
        content=body,
        headers={
            SIGNATURE_HEADER: sign(secret, body, timestamp=int(time.time())),
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert late.status_code == 200
    assert late.json()["outcome"] == "duplicate"
    assert late.json()["status"] == "completed"
    forged = httpx.post(
        f"{stack.url}/api/webhooks/callkaro",
        content=body,
        headers={SIGNATURE_HEADER: sign("not-the-secret", body, timestamp=int(time.time()))},
        timeout=10,
    )
    assert forged.status_code == 401

    status = httpx.get(f"{stack.url}/api/queue/status", headers=ADMIN_HEADERS, timeout=10)
    assert status.status_code == 200
    report = status.json()
    assert report["success"] is True
    assert {c["name"] for c in report["crons"]} == {"daily-calls", "callbacks-due"}
    assert report["queue"]["name"] == "daily_calls"
    daily = next(p for p in report["pipelines"] if p["name"] == "daily_calls")
    assert daily["completed"] >= 1
