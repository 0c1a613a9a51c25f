from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from falcon import testing

from infra.bus.publishing import InMemoryPublisher
from infra.store.records import MessageRef
from tests.producers.api_support import (
    ADMIN_TOKEN,
    assert_problem,
    current_payload,
    post,
)
from tests.producers.conftest import Store, TenantFixture


def get_job(client: testing.TestClient, job_id: str, token: str | None) -> testing.Result:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.simulate_get(f"/api/jobs/{job_id}", headers=headers)


def accept_call(client: testing.TestClient, conversation_id: str) -> str:
    """Send a webhook for acme's general agent; return the job id intake answered."""
    result = post(client, current_payload(conversation_id))
    assert result.status_code == 202, result.text
    job_id: str = result.json["job_id"]
    return job_id


def first_message(tenant: TenantFixture, conversation_id: str) -> MessageRef:
    return MessageRef(f"post-call:{tenant.tenant.id}:{conversation_id}", "fetch_transcript", 0)


def test_a_job_right_after_intake_is_queued_with_its_first_step_queued(
    client: testing.TestClient, acme: TenantFixture, publisher: InMemoryPublisher
) -> None:
    job_id = accept_call(client, "conv_job")

    result = get_job(client, job_id, acme.key)

    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json
    assert body["job_id"] == job_id
    assert body["kind"] == "post_call"
    assert body["status"] == "queued"
    assert (body["tenant"], body["tenant_id"]) == ("acme", acme.tenant.id)
    assert body["correlation_id"] == "conv_job"
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() is not None
    assert datetime.fromisoformat(body["updated_at"]) >= created
    assert body["steps"] == [
        {
            "name": "fetch_transcript",
            "status": "queued",
            "attempts": 0,
            "error": None,
            "messages": 1,
        }
    ]
    assert body["children"] == {"total": 0, "completed": 0, "failed": 0, "outstanding": 0}
    assert body["error"] is None
    assert body["redrives"] == 0
    assert [e.options["job_id"] for e in publisher.published] == [job_id]


def test_another_tenants_job_is_404_like_an_unknown_one_but_the_admin_sees_it(
    client: testing.TestClient, acme: TenantFixture, globex: TenantFixture
) -> None:
    job_id = accept_call(client, "conv_private")

    hidden = get_job(client, job_id, globex.key)
    unknown = get_job(client, "no-such-job", acme.key)
    admin = get_job(client, job_id, ADMIN_TOKEN)

    assert assert_problem(hidden, 404)["title"] == assert_problem(unknown, 404)["title"]
    assert job_id in hidden.json["detail"]
    assert admin.status_code == 200, admin.text
    assert (admin.json["job_id"], admin.json["tenant"]) == (job_id, "acme")


def test_an_unknown_job_is_404_for_the_admin_too(client: testing.TestClient) -> None:
    assert_problem(get_job(client, "job-that-never-was", ADMIN_TOKEN), 404)


@pytest.mark.parametrize("token", [None, "wrong-key"])
def test_the_jobs_api_answers_401_without_a_valid_token(
    client: testing.TestClient, acme: TenantFixture, token: str | None
) -> None:
    job_id = accept_call(client, "conv_auth")

    result = get_job(client, job_id, token)

    assert_problem(result, 401)
    assert result.headers["www-authenticate"] == "Bearer"
    assert "conv_auth" not in result.text


def test_a_dead_lettered_step_fails_the_job_naming_the_step_and_the_dead_letter(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    job_id = accept_call(client, "conv_dead")
    message = first_message(acme, "conv_dead")
    store.progress.message_started(job_id, message)
    store.progress.message_failed(
        job_id, message, error="PermanentError: conversation gone", dead_letter_id="x"
    )

    body = get_job(client, job_id, acme.key).json

    assert body["status"] == "failed"
    assert body["error"] == {
        "step": "fetch_transcript",
        "message": "PermanentError: conversation gone",
        "dead_letter_id": "x",
    }
    assert body["steps"] == [
        {
            "name": "fetch_transcript",
            "status": "failed",
            "attempts": 1,
            "error": "PermanentError: conversation gone",
            "messages": 1,
        }
    ]


def test_steps_come_in_pipeline_order_and_children_count_the_published_messages(
    client: testing.TestClient, store: Store, acme: TenantFixture
) -> None:
    job_id = accept_call(client, "conv_steps")
    fetch = first_message(acme, "conv_steps")
    analyze = MessageRef(f"call-transcribed:{acme.tenant.id}:conv_steps", "analyze_call", 1)
    store.progress.message_started(job_id, fetch)
    store.progress.message_succeeded(job_id, fetch, children=[analyze])
    store.progress.message_started(job_id, analyze)
    store.progress.message_failed(job_id, analyze, error="TransientError: 503", dead_letter_id=None)

    body = get_job(client, job_id, ADMIN_TOKEN).json

    assert body["status"] == "processing"
    assert [(s["name"], s["status"], s["attempts"]) for s in body["steps"]] == [
        ("fetch_transcript", "completed", 1),
        ("analyze_call", "retrying", 1),
    ]
    assert body["steps"][1]["error"] == "TransientError: 503"
    assert body["children"] == {"total": 1, "completed": 0, "failed": 0, "outstanding": 1}
    assert body["error"] is None
