from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from falcon import testing

from contracts import CallAnalysis, CallbackRequest, HealthAnswer
from contracts.values import CallLogEntry, VectorRecord, summary_vector_id, tenant_namespace
from infra.bus.publishing import InMemoryPublisher
from infra.store.records import InboxEntry, MessageRef
from tests.builders import make_post_call_job
from tests.producers.api_support import (
    ADMIN_TOKEN,
    GENERAL_AGENT,
    HEALTH_AGENT,
    PROBLEM_JSON,
    current_payload,
    post,
)
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
    job_id = f"job-{tenant.tenant.name}-{conversation_id}"
    store.ledger.accept(
        InboxEntry(
            source="elevenlabs",
            external_id=conversation_id,
            tenant_id=tenant.tenant.id,
            kind="post_call",
            contract=make_post_call_job(
                job_id=job_id,
                tenant_id=tenant.tenant.id,
                conversation_id=conversation_id,
                duration_secs=61,
            ),
        )
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


def first_message(tenant: TenantFixture, conversation_id: str) -> MessageRef:
    """The first message of a seeded call's job (recorded ``queued`` by the ledger)."""
    return MessageRef(f"post-call:{tenant.tenant.id}:{conversation_id}", "fetch_transcript", 0)


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
    fetch = first_message(acme, "conv_a")
    analyze = MessageRef(f"call-transcribed:{acme.tenant.id}:conv_a", "analyze_call", 1)
    store.progress.message_started(job_id, fetch)
    store.progress.message_succeeded(job_id, fetch, children=[analyze])
    store.progress.message_started(job_id, analyze)
    store.progress.message_failed(job_id, analyze, error="TransientError: 503", dead_letter_id=None)
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
        {
            "name": "fetch_transcript",
            "status": "completed",
            "attempts": 1,
            "error": None,
            "messages": 1,
        },
        {
            "name": "analyze_call",
            "status": "retrying",
            "attempts": 1,
            "error": "TransientError: 503",
            "messages": 1,
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


def test_similar_of_a_health_check_call_is_a_final_422_not_a_409_to_retry(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    accepted = post(client, current_payload("conv_check", agent_id=HEALTH_AGENT))
    assert accepted.status_code == 202, accepted.text
    seed_call(store, acme, "conv_general", summary="Bill too high.", vector=[1.0, 0.0])

    result = get(client, "/api/calls/conv_check/similar", acme.key)

    assert get(client, "/api/calls/conv_check", acme.key).json["kind"] == "health_check"
    assert result.status_code == 422, result.text
    assert result.headers["content-type"] == PROBLEM_JSON
    [error] = result.json["errors"]
    assert error["field"] == "conversation_id"
    assert "health-check calls are not indexed" in error["message"]


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


def test_a_conversation_id_reused_by_another_tenant_is_a_new_job_of_that_tenant(
    client: testing.TestClient,
    store: Store,
    publisher: InMemoryPublisher,
    acme: TenantFixture,
    globex: TenantFixture,
) -> None:
    first = post(client, current_payload("conv_shared"))
    second = post(client, current_payload("conv_shared", agent_id="agent_globex"))

    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert second.json["status"] == "queued"
    assert second.json["job_id"] != first.json["job_id"]
    assert [e.options["tenant_id"] for e in publisher.published] == [
        acme.tenant.id,
        globex.tenant.id,
    ]
    acme_view = get(client, "/api/calls/conv_shared", acme.key).json
    globex_view = get(client, "/api/calls/conv_shared", globex.key).json
    assert (acme_view["tenant"], acme_view["job_id"]) == ("acme", first.json["job_id"])
    assert (globex_view["tenant"], globex_view["job_id"]) == ("globex", second.json["job_id"])
    assert [v.tenant_name for v in store.queries.find_calls("conv_shared", tenant_id=None)] == [
        "acme",
        "globex",
    ]


def test_the_admin_reading_a_call_several_tenants_have_gets_409_listing_them(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, acme, "conv_shared")
    seed_call(store, globex, "conv_shared")

    result = get(client, "/api/calls/conv_shared", ADMIN_TOKEN)

    assert result.status_code == 409
    assert result.headers["content-type"] == PROBLEM_JSON
    assert result.json["tenants"] == ["acme", "globex"]
    assert "?tenant=NAME" in result.json["detail"]


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_the_admin_picks_a_tenants_call_with_the_tenant_parameter(
    client: testing.TestClient,
    store: Store,
    acme: TenantFixture,
    globex: TenantFixture,
    tenant: str,
) -> None:
    jobs = {"acme": seed_call(store, acme, "conv_shared")}
    jobs["globex"] = seed_call(store, globex, "conv_shared")

    body = get(client, f"/api/calls/conv_shared?tenant={tenant}", ADMIN_TOKEN).json

    assert (body["tenant"], body["job_id"]) == (tenant, jobs[tenant])


def test_the_admin_naming_an_unknown_tenant_or_one_without_the_call_gets_404(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, acme, "conv_shared")
    seed_call(store, globex, "conv_shared")

    seed_call(store, acme, "conv_acme_only")

    unknown_tenant = get(client, "/api/calls/conv_shared?tenant=initech", ADMIN_TOKEN)
    tenant_without_it = get(client, "/api/calls/conv_acme_only?tenant=globex", ADMIN_TOKEN)

    assert unknown_tenant.status_code == tenant_without_it.status_code == 404
    assert unknown_tenant.headers["content-type"] == PROBLEM_JSON


def test_a_tenant_key_sees_only_its_own_call_of_a_shared_id_whatever_tenant_it_names(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, acme, "conv_shared")
    globex_job = seed_call(store, globex, "conv_shared")

    own = get(client, "/api/calls/conv_shared", globex.key)
    naming_other = get(client, "/api/calls/conv_shared?tenant=acme", globex.key)

    assert (own.json["tenant"], own.json["job_id"]) == ("globex", globex_job)
    assert (naming_other.json["tenant"], naming_other.json["job_id"]) == ("globex", globex_job)


def test_similar_of_a_shared_id_is_409_for_the_admin_until_a_tenant_is_named(
    client: testing.TestClient, store: Store, acme: TenantFixture, globex: TenantFixture
) -> None:
    seed_call(store, acme, "conv_shared", summary="Acme bill.", vector=[1.0, 0.0])
    seed_call(store, acme, "conv_acme_near", summary="Acme meter.", vector=[0.9, 0.1])
    seed_call(store, globex, "conv_shared", summary="Globex bill.", vector=[1.0, 0.0])
    seed_call(store, globex, "conv_globex_near", summary="Globex meter.", vector=[0.9, 0.1])

    ambiguous = get(client, "/api/calls/conv_shared/similar", ADMIN_TOKEN)
    acme_similar = get(client, "/api/calls/conv_shared/similar?tenant=acme", ADMIN_TOKEN)
    globex_similar = get(client, "/api/calls/conv_shared/similar", globex.key)

    assert ambiguous.status_code == 409
    assert ambiguous.json["tenants"] == ["acme", "globex"]
    assert [s["conversation_id"] for s in acme_similar.json["similar"]] == ["conv_acme_near"]
    assert [s["conversation_id"] for s in globex_similar.json["similar"]] == ["conv_globex_near"]
    assert globex_similar.json["similar"][0]["summary"] == "Globex meter."


@pytest.mark.parametrize(("phone", "status"), [(None, "unplaceable"), ("+14155550123", "queued")])
def test_a_due_callback_shows_whether_it_could_be_placed(
    client: testing.TestClient,
    store: Store,
    acme: TenantFixture,
    phone: str | None,
    status: str,
) -> None:
    seed_call(store, acme, "conv_cb")
    store.calls.schedule_callback(
        tenant_id=acme.tenant.id,
        conversation_id="conv_cb",
        due_at=DUE,
        reason="call me back",
        phone=phone,
        agent_id=GENERAL_AGENT,
    )

    store.outbound.claim_callbacks(DUE, "job_callbacks_tick")

    body = get(client, "/api/calls/conv_cb", acme.key).json
    assert body["callback"]["status"] == status
