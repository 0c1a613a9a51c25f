"""The demo's daily-calls section: users in several zones, a tick, simulated calls.

Each demo user's call time is set a minute before their local time now, so the tick the
demo triggers (``POST /api/queue/trigger``) finds them due; one more user's call time
was hours ago, so they are first called tomorrow. The simulator plays every call's
status webhooks back to the API; one number is told to be busy, so its call gets a
retry scheduled later the same local day. The section ends with a table of the calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.table import Table

BUSY_NUMBER = "+442079460002"
"""The demo number the simulator answers busy (``SWITCHBOARD_SIMULATOR__OUTCOMES``)."""
POLL_TIMEOUT_S = 60.0
ENDED = {"completed", "failed", "no_answer", "busy", "missed", "unknown"}


@dataclass(frozen=True)
class DemoUser:
    """A demo user: where they live and how long ago their call time was."""

    name: str
    phone: str
    zone: str
    minutes_ago: int

    def call_time(self, now: datetime) -> str:
        """Their local call time: ``minutes_ago`` before their local time ``now``."""
        local = now.astimezone(ZoneInfo(self.zone)) - timedelta(minutes=self.minutes_ago)
        return local.strftime("%H:%M")


USERS = (
    DemoUser("Asha (Kolkata)", "+919876543210", "Asia/Kolkata", 1),
    DemoUser("Tom (London)", BUSY_NUMBER, "Europe/London", 1),
    DemoUser("Maria (New York)", "+12125550143", "America/New_York", 1),
    DemoUser("Kenji (Tokyo)", "+81312345678", "Asia/Tokyo", 1),
    DemoUser("Noah (Sydney)", "+61291234567", "Australia/Sydney", 180),
)
"""Four users due now, one whose call time was three hours ago."""


@dataclass
class DailyCallsResult:
    """What the section found.

    Attributes:
        checks: (what was checked, what came back, passed).
        rows: The table's rows, one per user.
    """

    checks: list[tuple[str, str, bool]]
    rows: list[tuple[str, ...]]


def run_daily_calls(
    client: httpx.Client, admin_token: str, tenant: str, console: Console
) -> DailyCallsResult:
    """Create the users, trigger a tick, wait for the simulated calls, report them."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    now = datetime.now(UTC)
    ids: dict[DemoUser, str] = {}
    for user in USERS:
        response = client.post(
            "/api/users",
            params={"tenant": tenant},
            headers=headers,
            json={
                "name": user.name,
                "phone": user.phone,
                "local_tz": user.zone,
                "call_time": user.call_time(now),
                "call_enabled": True,
            },
        )
        response.raise_for_status()
        ids[user] = response.json()["id"]
    console.print(f"added {len(USERS)} users in {len(USERS)} time zones")
    trigger = client.post("/api/queue/trigger", headers=headers)
    again = client.post("/api/queue/trigger", headers=headers)
    checks = [
        ("POST /api/queue/trigger → 202", str(trigger.status_code), trigger.status_code == 202),
        ("a second trigger at once → 429", str(again.status_code), again.status_code == 429),
    ]
    console.print(f"triggered a daily-calls tick (job {trigger.json().get('job_id')})")
    due = [u for u in USERS if u.minutes_ago < 30]
    calls = _wait_for_calls(client, headers, {u: ids[u] for u in due})
    status = client.get("/api/queue/status", headers=headers)
    checks.append(
        (
            "GET /api/queue/status → 200 with crons",
            str(status.status_code),
            status.status_code == 200 and bool(status.json().get("crons")),
        )
    )
    later = client.get(f"/api/users/{ids[USERS[-1]]}", headers=headers).json()
    rows: list[tuple[str, ...]] = []
    for user in USERS:
        history = calls.get(user, [])
        first = history[-1] if history else None
        retry = next((c for c in history if c["status"] == "scheduled"), None)
        rows.append(
            (
                user.name,
                user.call_time(now),
                first["status"] if first else f"next: {_hhmm(later.get('next_call_at'))}",
                _retry_text(retry),
            )
        )
    expected = {"completed": len(due) - 1, "busy": 1}
    got = {s: sum(1 for r in rows if r[2] == s) for s in expected}
    checks.append(("simulated calls: 3 completed, 1 busy", str(got), got == expected))
    return DailyCallsResult(checks, rows)


def _wait_for_calls(
    client: httpx.Client, headers: dict[str, str], users: dict[DemoUser, str]
) -> dict[DemoUser, list[dict[str, Any]]]:
    deadline = time.monotonic() + POLL_TIMEOUT_S
    calls: dict[DemoUser, list[dict[str, Any]]] = {}
    while time.monotonic() < deadline:
        for user, user_id in users.items():
            response = client.get(f"/api/users/{user_id}/calls", headers=headers)
            response.raise_for_status()
            calls[user] = response.json()["calls"]
        if all(_first_attempt_ended(history) for history in calls.values()):
            break
        time.sleep(0.5)
    return calls


def _first_attempt_ended(history: list[dict[str, Any]]) -> bool:
    first = [c for c in history if c["attempt"] == 1]
    return bool(first) and first[0]["status"] in ENDED


def _hhmm(moment: str | None) -> str:
    if moment is None:
        return "-"
    return f"{datetime.fromisoformat(moment).astimezone(UTC):%d %b %H:%M}Z"


def _retry_text(retry: dict[str, Any] | None) -> str:
    if retry is None:
        return "-"
    return f"#{retry['attempt']} at {_hhmm(retry['due_at'])}"


def daily_calls_table(result: DailyCallsResult) -> Table:
    """The calls of the demo users, readable at 80 columns."""
    table = Table(title="Daily calls (simulated telephony)", expand=True)
    table.add_column("User", no_wrap=True)
    table.add_column("Call at", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Retry", no_wrap=True)
    for row in result.rows:
        table.add_row(*row)
    return table
