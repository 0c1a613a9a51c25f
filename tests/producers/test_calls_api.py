from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from falcon import testing

from contracts import CallAnalysis, CallbackRequest, HealthAnswer
from contracts.values import CallLogEntry, VectorRecord, summary_vector_id, tenant_namespace
from infra.store.jobs import SqlJobProgress
from tests.producers.api_support import ADMIN_TOKEN, PROBLEM_JSON
from tests.producers.conftest import Store, TenantFixture

DUE = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


def seed_call(
    store: Store,
    tenant: TenantFixture,
    conversation_id: str,
    *,
    summary: str | None = None,
    vector: list[float] | None = None,
    topics: list[str] | None = None,
) -> str:
    """Accept a job for the call; with ``summary`` persist its log, with ``vector`` index it."""
    job_id = f"job-{conversation_id}"
    store.ledger.accept(
        source="elevenlabs",
        external_id=conversation_id,
        tenant_id=tenant.tenant.id,
        kind="general",
        contract="PostCallJobData",
        payload={"conversation_id": conversation_id, "duration_secs": 61},
        correlation_id=conversation_id,
        job_id=job_id,
    )
    if summary is not None:
        analysis = CallAnalysis(
            summary=summary,
            topics=topics or ["billing"],
            sentiment="negative",
            callback=CallbackRequest(due_at=DUE, reason="asked for a callback"),
            analyzer="local",
        )
        store.calls.save_call_log(
            CallLogEntry(
                tenant_id=tenant.tenant.id,
                conversation_id=conversation_id,
                agent_id="agent_general",
                job_id=job_id,
                analysis=analysis,
                duration_secs=95,
                call_status="done",
            )
        )
    if vector is not None:
        metadata = {
            "conversation_id": conversation_id,
            "tenant_id": tenant.tenant.id,
            "kind": "summary",
        }
        store.vectors.upsert(
            tenant_namespace(tenant.tenant.id),
            [VectorRecord(id=summary_vector_id(conversation_id), values=vector, metadata=metadata)],
        )
    return job_id


def get(client: testing.TestClient, path: str, token: str | None) -> testing.Result:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.simulate_get(path, headers=headers)


@pytest.mark.parametrize("header", [None, "Bearer", "Basic YWRtaW46YWRtaW4=", "Bearer wrong-key"])
def test_the_calls_api_answers_401_with_a_bearer_challenge_without_a_valid_token(
    client: testing.TestClient, store: Store, acme: TenantFixture, header: str | None
) -> None:
    seed_call(store, acme, "conv_a")
    headers = {"Authorization": header} if header is not None else {}

    result = client.simulate_get("/api/calls/conv_a", headers=headers)

    assert result.status_code == 401
    assert result.headers["content-type"] == PROBLEM_JSON
    assert result.headers["www-authenticate"] == "Bearer"


def test_a_tenant_sees_its_call_with_steps_results_and_callback(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    job_id = seed_call(store, acme, "conv_a", summary="Bill too high.", topics=["billing", "meter"])
    progress = SqlJobProgress(store.engine)
    progress.step_started(job_id, "fetch_transcript")
    progress.step_succeeded(job_id, "fetch_transcript", final=False)
    progress.step_started(job_id, "analyze_call")
    progress.step_failed(job_id, "analyze_call", error="TransientError: 503", dead=False)
    store.calls.schedule_callback(
        tenant_id=acme.tenant.id, conversation_id="conv_a", due_at=DUE, reason="tomorrow 5 pm"
    )

    result = get(client, "/api/calls/conv_a", acme.key)

    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json
    assert body["conversation_id"] == "conv_a"
    assert body["job_id"] == job_id
    assert body["tenant"] == "acme"
    assert body["kind"] == "general"
    assert body["status"] == "processing"
    assert body["steps"] == [
        {"name": "fetch_transcript", "status": "completed", "attempts": 1, "error": None},
        {
            "name": "analyze_call",
            "status": "retrying",
            "attempts": 1,
            "error": "TransientError: 503",
        },
    ]
    assert (body["summary"], body["topics"], body["sentiment"]) == (
        "Bill too high.",
        ["billing", "meter"],
        "negative",
    )
    assert body["duration_secs"] == 95
    assert body["callback"]["reason"] == "tomorrow 5 pm"
    assert body["callback"]["status"] == "scheduled"
    assert datetime.fromisoformat(body["callback"]["due_at"]) == DUE
    assert body["health_answers"] == []


def test_a_queued_call_has_no_results_yet_but_its_health_answers_show(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    seed_call(store, acme, "conv_h")
    answer = HealthAnswer(question="slept_hours", answer="about seven", value=7, unit="hours")
    store.calls.save_health_answers(
        tenant_id=acme.tenant.id, conversation_id="conv_h", answers=[answer]
    )

    body = get(client, "/api/calls/conv_h", acme.key).json

    assert (body["status"], body["summary"], body["topics"], body["callback"]) == (
        "queued",
        None,
        [],
        None,
    )
    assert body["health_answers"] == [answer.model_dump(mode="json")]


def test_another_tenants_call_is_404_but_the_admin_sees_every_tenant(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, acme, "conv_acme")
    seed_call(store, globex, "conv_globex")

    hidden = get(client, "/api/calls/conv_globex", acme.key)
    unknown = get(client, "/api/calls/conv_nowhere", acme.key)

    assert hidden.status_code == unknown.status_code == 404
    assert hidden.headers["content-type"] == PROBLEM_JSON
    assert get(client, "/api/calls/conv_globex", globex.key).json["tenant"] == "globex"
    assert get(client, "/api/calls/conv_globex", ADMIN_TOKEN).json["tenant"] == "globex"
    assert get(client, "/api/calls/conv_acme", ADMIN_TOKEN).json["tenant"] == "acme"


@pytest.mark.parametrize("k", ["0", "51", "-1", "five", "2.5", "", "%C2%B2"])
def test_similar_rejects_a_k_outside_1_to_50_naming_k(
    client: testing.TestClient, store: Store, acme: TenantFixture, k: str
) -> None:
    seed_call(store, acme, "conv_a", summary="s", vector=[1.0, 0.0])

    result = get(client, f"/api/calls/conv_a/similar?k={k}", acme.key)

    assert result.status_code == 422
    assert result.headers["content-type"] == PROBLEM_JSON
    assert result.json["errors"][0]["field"] == "k"


def test_similar_is_409_while_the_call_is_not_indexed(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    seed_call(store, acme, "conv_a")

    result = get(client, "/api/calls/conv_a/similar", acme.key)

    assert result.status_code == 409
    assert result.headers["content-type"] == PROBLEM_JSON


def test_similar_answers_the_nearest_calls_of_the_tenant_without_the_call_itself(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, acme, "conv_a", summary="Bill too high.", vector=[1.0, 0.0, 0.0])
    seed_call(store, acme, "conv_near", summary="Bill question.", vector=[0.9, 0.1, 0.0])
    seed_call(store, acme, "conv_mid", summary="Meter photo.", vector=[0.5, 0.5, 0.0])
    seed_call(store, acme, "conv_far", summary="Moving house.", vector=[0.0, 0.0, 1.0])
    seed_call(store, globex, "conv_other", summary="Same words.", vector=[1.0, 0.0, 0.0])

    top_two = get(client, "/api/calls/conv_a/similar?k=2", acme.key)
    default = get(client, "/api/calls/conv_a/similar", ADMIN_TOKEN)

    assert top_two.status_code == 200, top_two.text
    assert top_two.json["conversation_id"] == "conv_a"
    similar = top_two.json["similar"]
    assert [s["conversation_id"] for s in similar] == ["conv_near", "conv_mid"]
    assert similar[0]["summary"] == "Bill question."
    assert similar[0]["topics"] == ["billing"]
    assert 0.9 < similar[0]["score"] <= 1.0
    assert similar[0]["score"] > similar[1]["score"]
    assert [s["conversation_id"] for s in default.json["similar"]] == [
        "conv_near",
        "conv_mid",
        "conv_far",
    ]


def test_similar_of_another_tenants_call_is_404(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, globex, "conv_other", summary="s", vector=[1.0, 0.0])

    assert get(client, "/api/calls/conv_other/similar", acme.key).status_code == 404
