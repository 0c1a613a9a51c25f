"""``GET /api/queue/status`` and ``POST /api/queue/trigger`` (the old service's admin paths)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from falcon import testing

from contracts import CONTRACTS, DailyCallsTick
from infra.bus.publishing import InMemoryPublisher
from infra.queue_report import PIPELINES, QueueReporter
from infra.settings import DailyCallsSettings
from tests.producers.api_support import ADMIN_TOKEN, NOW, assert_problem
from tests.producers.conftest import ClientFactory, Store, TenantFixture

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    yield client
    client.close()


def test_every_queue_a_contract_routes_to_belongs_to_a_pipeline() -> None:
    routed = {c.route.queue for c in CONTRACTS}

    assert set().union(*PIPELINES.values()) == routed


def test_a_tenant_key_may_not_see_or_trigger_the_shared_queues(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    tenant = {"Authorization": f"Bearer {acme.key}"}

    assert_problem(client.simulate_get("/api/queue/status", headers=tenant), 403)
    assert_problem(client.simulate_post("/api/queue/trigger", headers=tenant), 403)
    assert_problem(client.simulate_get("/api/queue/status"), 401)


def test_the_status_keeps_the_old_answer_and_adds_queues_pipelines_and_crons(
    make_client: ClientFactory, store: Store, broker: redis.Redis, acme: TenantFixture
) -> None:
    broker.rpush("switchboard:daily_calls.place", "m1", "m2")
    waiting_since = json.dumps({"message_timestamp": (NOW - 90) * 1000, "options": {}})
    broker.hset(
        "switchboard:daily_calls.place.msgs", mapping={"m1": waiting_since, "m2": "{}", "m3": "{}"}
    )
    broker.zadd("switchboard:calls.analyze.XQ", {"dead1": 1})
    reporter = QueueReporter(
        broker, "switchboard", store.jobs, DailyCallsSettings(tick_every_min=5), store.clock
    )
    client = make_client(queue_report=reporter)

    result = client.simulate_get("/api/queue/status", headers=ADMIN)

    assert result.status_code == 200, result.text
    body = result.json
    assert (body["success"], body["health"], body["broker"]) == (True, "degraded", "ok")
    queues = {q["name"]: q for q in body["queues"]}
    assert queues["daily_calls.place"] == {
        "name": "daily_calls.place",
        "ready": 2,
        "delayed": 0,
        "in_flight": 1,
        "dead_lettered": 0,
        "oldest_ready_age_s": 90.0,
    }
    assert queues["calls.analyze"]["dead_lettered"] == 1
    # NOW is 20:26:40 UTC: the next five-minute slot is 20:30.
    assert body["crons"] == [
        {"name": "daily-calls", "cron": "*/5 * * * *", "next": "2026-05-28T20:30:00+00:00"},
        {"name": "callbacks-due", "cron": "*/5 * * * *", "next": "2026-05-28T20:30:00+00:00"},
    ]
    legacy = body["queue"]
    assert (legacy["name"], legacy["waiting"], legacy["active"], legacy["paused"]) == (
        "daily_calls",
        2,
        1,
        0,
    )
    assert legacy["crons"][0]["pattern"] == "*/5 * * * *"
    assert {p["name"] for p in body["pipelines"]} == set(PIPELINES)


def test_the_old_queue_object_speaks_for_daily_calls_only_and_in_the_old_two_words(
    make_client: ClientFactory, store: Store, broker: redis.Redis, acme: TenantFixture
) -> None:
    reporter = QueueReporter(broker, "switchboard", store.jobs, DailyCallsSettings(), store.clock)
    client = make_client(queue_report=reporter)
    broker.zadd("switchboard:calls.health.XQ", {"dead-health-check": 1})

    elsewhere = client.simulate_get("/api/queue/status", headers=ADMIN).json
    broker.zadd("switchboard:daily_calls.place.XQ", {"dead-placement": 1})
    own = client.simulate_get("/api/queue/status", headers=ADMIN).json

    # Another pipeline's dead letter degrades the report, not the daily-calls object.
    assert elsewhere["health"] == "degraded"
    assert (elsewhere["queue"]["health"], elsewhere["queue"]["dead_lettered"]) == ("healthy", 0)
    # Its own is counted; "unhealthy" stays the old word for a broker that cannot be read.
    assert own["health"] == "degraded"
    assert (own["queue"]["health"], own["queue"]["dead_lettered"]) == ("healthy", 1)


def test_with_the_broker_down_the_status_still_answers_unhealthy(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    result = client.simulate_get("/api/queue/status", headers=ADMIN)

    assert result.status_code == 200
    assert result.json["health"] == "unhealthy"
    assert "unreachable" in result.json["broker"]
    assert {q["ready"] for q in result.json["queues"]} == {None}
    legacy = result.json["queue"]
    assert (legacy["health"], legacy["waiting"], legacy["dead_lettered"]) == (
        "unhealthy",
        None,
        None,
    )


def test_a_trigger_emits_one_daily_calls_tick_now_and_then_rate_limits(
    client: testing.TestClient,
    store: Store,
    publisher: InMemoryPublisher,
    acme: TenantFixture,
) -> None:
    first = client.simulate_post("/api/queue/trigger", headers=ADMIN)

    assert first.status_code == 202, first.text
    assert first.json["success"] is True
    assert first.json["jobId"] == first.json["job_id"]
    [envelope] = publisher.published
    tick = DailyCallsTick.model_validate(envelope.payload)
    assert tick.slot == datetime.fromtimestamp(NOW, tz=UTC)
    assert tick.manual is True
    job = store.jobs.job_view(first.json["job_id"], tenant_id=None)
    assert job is not None
    assert job.kind == "daily_calls"

    again = client.simulate_post("/api/queue/trigger", headers=ADMIN)

    document = assert_problem(again, 429)
    assert document["job_id"] == first.json["job_id"]
    assert 1 <= int(again.headers["retry-after"]) <= 10
    assert len(publisher.published) == 1


def test_a_viewer_token_may_look_but_not_trigger_and_a_revoked_one_is_refused(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    _, viewer = store.admins.add("vera", "viewer")
    _, admin = store.admins.add("ana", "admin")

    looked = client.simulate_get("/api/queue/status", headers=_bearer(viewer))
    refused = client.simulate_post("/api/queue/trigger", headers=_bearer(viewer))
    triggered = client.simulate_post("/api/queue/trigger", headers=_bearer(admin))

    assert looked.status_code == 200
    assert "viewer" in assert_problem(refused, 403)["detail"]
    assert triggered.status_code == 202
    store.admins.revoke("ana")
    assert_problem(client.simulate_get("/api/queue/status", headers=_bearer(admin)), 401)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
