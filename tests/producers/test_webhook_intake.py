from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from falcon import testing

from contracts import HealthCheckJobData, PostCallJobData
from infra.bus.publishing import InMemoryPublisher
from tests.producers.api_support import (
    NOW,
    PROBLEM_JSON,
    WEBHOOK,
    FailingPublisher,
    current_payload,
    encode,
    legacy_payload,
    sign,
    signed_headers,
)
from tests.producers.conftest import ClientFactory, Store, TenantFixture


def post(client: testing.TestClient, payload: dict[str, Any]) -> testing.Result:
    body = encode(payload)
    return client.simulate_post(WEBHOOK, body=body, headers=signed_headers(body))


def assert_problem(result: testing.Result, status: int) -> dict[str, Any]:
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == PROBLEM_JSON
    document: dict[str, Any] = result.json
    assert document["status"] == status
    assert document["title"]
    return document


def test_a_current_shape_webhook_is_accepted_recorded_and_published(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher, acme: TenantFixture
) -> None:
    result = post(client, current_payload("conv_1"))

    assert result.status_code == 202
    assert result.json["status"] == "queued"
    assert result.json["conversation_id"] == "conv_1"
    job_id = result.json["job_id"]
    assert len(job_id) == 32
    view = store.queries.call_view("conv_1", tenant_id=acme.tenant.id)
    assert view is not None
    assert (view.job_id, view.status, view.kind) == (job_id, "queued", "general")
    assert store.ledger.pending(min_age_s=0, limit=10) == []
    [envelope] = publisher.published
    assert (envelope.queue, envelope.actor) == ("calls.transcript", "fetch_transcript")
    assert envelope.options["contract"] == "PostCallJobData"
    assert envelope.options["correlation_id"] == "conv_1"
    assert envelope.options["tenant_id"] == acme.tenant.id
    assert envelope.options["job_id"] == job_id
    job = PostCallJobData.model_validate(envelope.payload)
    assert job.timezone == "Europe/Berlin"
    assert job.transcript is not None
    assert len(job.transcript) == 2


def test_an_older_shape_webhook_is_accepted_with_its_transcript(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    result = post(client, legacy_payload("conv_old"))

    assert result.status_code == 202
    job = PostCallJobData.model_validate(publisher.published[0].payload)
    assert job.conversation_id == "conv_old"
    assert job.transcript is not None
    assert [t.role for t in job.transcript] == ["agent", "user"]


def test_a_duplicate_delivery_answers_the_same_job_and_publishes_nothing(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    first = post(client, current_payload("conv_dup"))
    second = post(client, current_payload("conv_dup"))

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json["duplicate"] is True
    assert second.json["job_id"] == first.json["job_id"]
    assert len(publisher.published) == 1


def test_a_webhook_accepted_while_the_broker_is_down_stays_pending_for_the_relay(
    make_client: ClientFactory, store: Store, acme: TenantFixture
) -> None:
    failing = FailingPublisher()
    client = make_client(publisher=failing)

    result = post(client, current_payload("conv_down"))

    assert result.status_code == 202
    assert result.json["status"] == "queued"
    assert len(failing.attempts) == 1
    [pending] = store.ledger.pending(min_age_s=0, limit=10)
    assert pending.job_id == result.json["job_id"]
    assert pending.contract == "PostCallJobData"
    assert pending.correlation_id == "conv_down"


def test_a_health_check_agent_gets_a_health_check_job(
    client: testing.TestClient, publisher: InMemoryPublisher, store: Store
) -> None:
    result = post(client, current_payload("conv_health", agent_id="agent_health"))

    assert result.status_code == 202
    [envelope] = publisher.published
    assert (envelope.queue, envelope.actor) == ("calls.health", "record_health_check")
    job = HealthCheckJobData.model_validate(envelope.payload)
    assert job.thread_id == "conv_health"
    view = store.queries.call_view("conv_health", tenant_id=None)
    assert view is not None
    assert view.kind == "health_check"


def test_a_health_check_dynamic_variable_on_a_general_agent_gets_a_health_check_job(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    variables = {"dynamic_variables": {"call_type": "health_check", "thread_id": "thread-42"}}
    payload = current_payload("conv_dyn", conversation_initiation_client_data=variables)

    assert post(client, payload).status_code == 202
    job = HealthCheckJobData.model_validate(publisher.published[0].payload)
    assert job.thread_id == "thread-42"


@pytest.mark.parametrize("kind", ["post_call_audio", "call_initiation_failure"])
def test_other_event_types_are_ignored_and_nothing_is_enqueued(
    client: testing.TestClient, publisher: InMemoryPublisher, store: Store, kind: str
) -> None:
    payload = {"type": kind, "event_timestamp": NOW, "data": {"conversation_id": "conv_x"}}

    result = post(client, payload)

    assert result.status_code == 200
    assert result.json == {"status": "ignored", "type": kind}
    assert publisher.published == []
    assert store.queries.call_view("conv_x", tenant_id=None) is None


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "t=abc,v0=00",
        sign(b"something else"),
        sign(encode(current_payload()), at=NOW - 1801),
        sign(encode(current_payload()), at=NOW + 1801),
    ],
    ids=["missing", "malformed", "mismatch", "expired", "future"],
)
def test_a_bad_signature_is_rejected_with_401_and_nothing_recorded(
    client: testing.TestClient, publisher: InMemoryPublisher, store: Store, signature: str | None
) -> None:
    headers = {"ElevenLabs-Signature": signature} if signature is not None else {}

    result = client.simulate_post(WEBHOOK, body=encode(current_payload()), headers=headers)

    assert_problem(result, 401)
    assert publisher.published == []
    assert store.queries.call_view("conv_1", tenant_id=None) is None


def test_without_a_configured_secret_the_webhook_answers_503_saying_what_to_set(
    make_client: ClientFactory, acme: TenantFixture
) -> None:
    client = make_client(webhook_secret=None)

    document = assert_problem(post(client, current_payload()), 503)

    assert "SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET" in document["detail"]


def test_a_signed_body_that_is_not_json_is_422(client: testing.TestClient) -> None:
    body = b"{this is not json"

    result = client.simulate_post(WEBHOOK, body=body, headers=signed_headers(body))

    assert assert_problem(result, 422)["detail"] == "body is not valid JSON"


def test_a_missing_conversation_id_is_422_naming_the_field(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    payload = current_payload()
    del payload["data"]["conversation_id"]

    document = assert_problem(post(client, payload), 422)

    assert "data.conversation_id" in document["detail"]
    assert document["errors"][0]["field"] == "data.conversation_id"
    assert document["errors"][0]["message"]
    assert publisher.published == []


def test_an_unknown_agent_is_404_and_the_rejection_is_kept(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher
) -> None:
    result = post(client, current_payload("conv_stranger", agent_id="agent_nobody"))

    assert "agent_nobody" in assert_problem(result, 404)["detail"]
    assert publisher.published == []
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT source, external_id, reason, payload FROM intake_rejections")
        ).all()
    assert len(rows) == 1
    source, external_id, reason, payload = rows[0]
    assert (source, external_id) == ("elevenlabs", "conv_stranger")
    assert "agent_nobody" in reason
    assert "conv_stranger" in payload


def test_an_oversize_body_is_413_before_it_is_read(
    make_client: ClientFactory, acme: TenantFixture, publisher: InMemoryPublisher
) -> None:
    client = make_client(max_body_bytes=512)
    payload = current_payload(padding="x" * 600)

    assert_problem(post(client, payload), 413)
    assert publisher.published == []


def test_a_chunked_body_without_length_is_read_bounded_and_413_when_too_long(
    make_client: ClientFactory, acme: TenantFixture, publisher: InMemoryPublisher
) -> None:
    app = make_client(max_body_bytes=2048).app
    small = encode(current_payload("conv_chunked"))
    large = encode(current_payload(padding="x" * 2048))
    assert len(small) < 2048
    statuses = []
    for body in (large, small):
        environ = testing.create_environ(
            path=WEBHOOK, method="POST", body=body, headers=signed_headers(body)
        )
        # What gunicorn hands over for Transfer-Encoding: chunked: no CONTENT_LENGTH.
        del environ["CONTENT_LENGTH"]
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        start_response = testing.StartResponseMock()
        b"".join(app(environ, start_response))
        statuses.append(start_response.status)

    assert statuses == ["413 Content Too Large", "202 Accepted"]
    assert [e.payload["conversation_id"] for e in publisher.published] == ["conv_chunked"]
