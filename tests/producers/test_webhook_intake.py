from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from falcon import testing

from contracts import HealthCheckJobData, PostCallJobData
from infra.bus.publishing import InMemoryPublisher
from tests.producers.api_support import (
    NOW,
    SECRET,
    WEBHOOK,
    FailingPublisher,
    assert_problem,
    current_payload,
    encode,
    error_fields,
    legacy_payload,
    post,
    post_body,
    sign,
    sign_rotating,
    signed_headers,
)
from tests.producers.conftest import ClientFactory, Store, TenantFixture


def test_a_current_shape_webhook_is_accepted_recorded_and_published(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher, acme: TenantFixture
) -> None:
    result = post(client, current_payload("conv_1"))

    assert result.status_code == 202
    assert result.json["status"] == "queued"
    assert result.json["conversation_id"] == "conv_1"
    job_id = result.json["job_id"]
    assert len(job_id) == 32
    [view] = store.queries.find_calls("conv_1", tenant_id=acme.tenant.id)
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
    [view] = store.queries.find_calls("conv_health", tenant_id=None)
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
    assert store.queries.find_calls("conv_x", tenant_id=None) == []


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
    assert store.queries.find_calls("conv_1", tenant_id=None) == []


def test_without_a_configured_secret_the_webhook_answers_503_saying_what_to_set(
    make_client: ClientFactory, acme: TenantFixture
) -> None:
    client = make_client(webhook_secret=None)

    document = assert_problem(post(client, current_payload()), 503)

    assert "SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET" in document["detail"]


def test_a_signed_body_that_is_not_json_is_422(client: testing.TestClient) -> None:
    body = b"{this is not json"

    result = client.simulate_post(WEBHOOK, body=body, headers=signed_headers(body))

    assert assert_problem(result, 422)["detail"].startswith("body is not valid JSON")


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


def jobs_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one())


def test_an_idempotency_key_replayed_with_the_same_body_answers_the_first_job(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher
) -> None:
    body = encode(current_payload("conv_key"))

    first = post_body(client, body, {"Idempotency-Key": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"})
    replay = post_body(client, body, {"Idempotency-Key": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"})

    assert first.status_code == 202
    assert "idempotent-replayed" not in first.headers
    assert replay.status_code == 202
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json == first.json
    assert len(publisher.published) == 1
    assert jobs_count(store) == 1


def test_a_quoted_idempotency_key_is_the_same_key_as_the_bare_one(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    body = encode(current_payload("conv_quoted"))

    first = post_body(client, body, {"Idempotency-Key": '"order-7"'})
    replay = post_body(client, body, {"Idempotency-Key": "order-7"})

    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json["job_id"] == first.json["job_id"]
    assert len(publisher.published) == 1


def test_an_idempotency_key_reused_with_another_body_is_422_naming_the_header(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher
) -> None:
    first = post(client, current_payload("conv_first"), {"Idempotency-Key": "key-1"})

    reused = post(client, current_payload("conv_other"), {"Idempotency-Key": "key-1"})

    document = assert_problem(reused, 422)
    assert error_fields(document) == ["Idempotency-Key"]
    assert first.json["job_id"] in document["detail"]
    assert [e.payload["conversation_id"] for e in publisher.published] == ["conv_first"]
    assert store.queries.find_calls("conv_other", tenant_id=None) == []


@pytest.mark.parametrize(
    "key",
    ["two words", "a/b", "k" * 129, '""', "", "caf\u00e9", "key;drop"],
    ids=["space", "slash", "129-chars", "empty-quoted", "empty", "non-ascii", "semicolon"],
)
def test_a_malformed_idempotency_key_is_422_and_nothing_is_accepted(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher, key: str
) -> None:
    document = assert_problem(post(client, current_payload(), {"Idempotency-Key": key}), 422)

    assert error_fields(document) == ["Idempotency-Key"]
    assert publisher.published == []
    assert jobs_count(store) == 0


def test_an_idempotency_key_of_128_characters_is_accepted(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    result = post(client, current_payload(), {"Idempotency-Key": "k" * 128})

    assert result.status_code == 202, result.text
    assert len(publisher.published) == 1


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_during_a_secret_rotation_either_matching_v0_entry_is_accepted(
    client: testing.TestClient, publisher: InMemoryPublisher, order: str
) -> None:
    body = encode(current_payload("conv_rotated"))
    secrets = ["the-retired-secret", SECRET] if order == "old-first" else [SECRET, "a-new-one"]

    result = client.simulate_post(
        WEBHOOK, body=body, headers={"ElevenLabs-Signature": sign_rotating(body, secrets)}
    )

    assert result.status_code == 202, result.text
    assert [e.payload["conversation_id"] for e in publisher.published] == ["conv_rotated"]


@pytest.mark.parametrize(
    ("signature", "detail"),
    [
        (sign_rotating(encode(current_payload()), ["old-secret", "newer-secret"]), "match"),
        (
            f"t={NOW},t={NOW}," + sign(encode(current_payload())).split(",")[1],
            "malformed",
        ),
        (f"t={NOW},v0=", "no v0"),
    ],
    ids=["no-entry-matches", "two-timestamps", "empty-v0"],
)
def test_a_signature_header_without_one_matching_v0_or_with_two_t_is_401(
    client: testing.TestClient,
    store: Store,
    publisher: InMemoryPublisher,
    signature: str,
    detail: str,
) -> None:
    result = client.simulate_post(
        WEBHOOK, body=encode(current_payload()), headers={"ElevenLabs-Signature": signature}
    )

    assert detail in assert_problem(result, 401)["detail"]
    assert publisher.published == []
    assert jobs_count(store) == 0


def test_a_signature_timestamp_too_long_to_parse_is_401_not_500(
    client: testing.TestClient,
) -> None:
    body = encode(current_payload())
    header = f"t={'9' * 4301},v0=00"

    result = client.simulate_post(WEBHOOK, body=body, headers={"ElevenLabs-Signature": header})

    assert_problem(result, 401)


def test_a_correctly_signed_timestamp_beyond_float_range_is_401_not_500(
    client: testing.TestClient,
) -> None:
    body = encode(current_payload())
    header = sign(body, at=10**400)

    result = client.simulate_post(WEBHOOK, body=body, headers={"ElevenLabs-Signature": header})

    assert "malformed" in assert_problem(result, 401)["detail"]


def nested(levels: int) -> Any:
    """``levels`` arrays, one inside the other, around a 0."""
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def test_json_nested_64_levels_is_accepted_and_65_is_422(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    # The body object is level 1, ``data`` level 2, the unknown field's arrays 3 and on.
    at_limit = post(client, current_payload("conv_64", padding=nested(62)))
    over = post(client, current_payload("conv_65", padding=nested(63)))

    assert at_limit.status_code == 202, at_limit.text
    document = assert_problem(over, 422)
    assert "64 levels" in document["detail"]
    assert error_fields(document)[0].startswith("data.padding")
    assert [e.payload["conversation_id"] for e in publisher.published] == ["conv_64"]


@pytest.mark.parametrize(
    ("transcript", "field", "message"),
    [
        ([{"role": 7, "message": "hi"}], "data.transcript.0.role", "must be a string"),
        ([{"message": "hi"}], "data.transcript.0.role", "is required"),
        (
            [{"role": "user", "message": "hi"}, {"role": "user", "message": ["x"]}],
            "data.transcript.1.message",
            "must be a string",
        ),
        ({"messages": "hello"}, "data.transcript.messages", "must be a JSON array"),
        ({"messages": [{"role": None}]}, "data.transcript.messages.0.role", "must be a string"),
    ],
    ids=["role-type", "role-missing", "message-type", "legacy-messages", "legacy-role"],
)
def test_an_invalid_turn_is_422_at_the_path_the_sender_wrote(
    client: testing.TestClient, transcript: Any, field: str, message: str
) -> None:
    document = assert_problem(post(client, current_payload(transcript=transcript)), 422)

    errors = {e["field"]: e["message"] for e in document["errors"]}
    assert message in errors[field]
    assert not [f for f in errors if "[" in f or "WebhookTurn" in f or "LegacyTranscript" in f]


def test_a_transcript_that_is_neither_array_nor_object_names_both_shapes(
    client: testing.TestClient,
) -> None:
    document = assert_problem(post(client, current_payload(transcript="hello")), 422)

    assert document["errors"] == [
        {"field": "data.transcript", "message": "must be a JSON array or must be a JSON object"}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            b'{"data": {"agent_id": "agent_general", "conversation_id": "c\\u0000"}}',
            "data.conversation_id",
        ),
        (
            b'{"data": {"agent_id": "agent_general", "conversation_id": "c\\ud800"}}',
            "data.conversation_id",
        ),
        (b'{"type": "post_call_\\u0000"}', "type"),
        (
            b'{"data": {"transcript": [{"role": "user", "message": "a\\udfff"}]}}',
            "data.transcript.0.message",
        ),
    ],
    ids=["nul-id", "surrogate-id", "nul-type", "surrogate-message"],
)
def test_nul_and_lone_surrogates_are_422_naming_the_path(
    client: testing.TestClient, store: Store, body: bytes, field: str
) -> None:
    document = assert_problem(post_body(client, body), 422)

    assert error_fields(document) == [field]
    assert jobs_count(store) == 0


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"start_time_unix_secs": -1}, "data.metadata.start_time_unix_secs"),
        ({"start_time_unix_secs": 7_258_118_400}, "data.metadata.start_time_unix_secs"),
        ({"start_time_unix_secs": 10**19}, "data.metadata.start_time_unix_secs"),
        ({"call_duration_secs": 2**31}, "data.metadata.call_duration_secs"),
        ({"call_duration_secs": -5}, "data.metadata.call_duration_secs"),
    ],
    ids=["before-1970", "year-2200", "beyond-64-bits", "beyond-int32", "negative"],
)
def test_times_and_durations_out_of_range_are_422_naming_the_field(
    client: testing.TestClient, publisher: InMemoryPublisher, metadata: dict[str, int], field: str
) -> None:
    document = assert_problem(post(client, current_payload(metadata=metadata)), 422)

    assert error_fields(document) == [field]
    assert publisher.published == []


def test_the_largest_duration_and_latest_start_are_accepted(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    metadata = {"start_time_unix_secs": 7_258_118_399, "call_duration_secs": 2**31 - 1}

    assert post(client, current_payload(metadata=metadata)).status_code == 202
    job = PostCallJobData.model_validate(publisher.published[0].payload)
    assert job.duration_secs == 2**31 - 1
    assert job.started_at is not None
    assert job.started_at.year == 2199


def test_a_numeric_thread_id_is_accepted_as_text(
    client: testing.TestClient, publisher: InMemoryPublisher
) -> None:
    variables = {"dynamic_variables": {"call_type": "health_check", "thread_id": 424242}}

    result = post(
        client, current_payload("conv_num", conversation_initiation_client_data=variables)
    )

    assert result.status_code == 202, result.text
    assert HealthCheckJobData.model_validate(publisher.published[0].payload).thread_id == "424242"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"conversation_id": "conv/1"}, "data.conversation_id"),
        ({"conversation_id": "conv 1"}, "data.conversation_id"),
        ({"conversation_id": "c" * 129}, "data.conversation_id"),
        ({"conversation_id": ""}, "data.conversation_id"),
        ({"agent_id": "agent general"}, "data.agent_id"),
        (
            {
                "conversation_initiation_client_data": {
                    "dynamic_variables": {"thread_id": "thread/1"}
                }
            },
            "data.conversation_initiation_client_data.dynamic_variables.thread_id",
        ),
    ],
    ids=["slash", "space", "129-chars", "empty", "agent-space", "thread-slash"],
)
def test_ids_that_are_not_identifiers_are_422_naming_the_field(
    client: testing.TestClient, store: Store, data: dict[str, Any], field: str
) -> None:
    payload = current_payload()
    payload["data"] |= data

    document = assert_problem(post(client, payload), 422)

    assert error_fields(document) == [field]
    assert jobs_count(store) == 0


def test_an_idempotency_key_is_per_tenant_so_another_tenants_same_key_is_a_new_job(
    client: testing.TestClient,
    publisher: InMemoryPublisher,
    acme: TenantFixture,
    globex: TenantFixture,
) -> None:
    acme_call = post(client, current_payload("conv_a"), {"Idempotency-Key": "shared-key"})
    globex_call = post(
        client,
        current_payload("conv_b", agent_id="agent_globex"),
        {"Idempotency-Key": "shared-key"},
    )

    assert (acme_call.status_code, globex_call.status_code) == (202, 202), globex_call.text
    assert "idempotent-replayed" not in globex_call.headers
    assert globex_call.json["job_id"] != acme_call.json["job_id"]
    assert [e.options["tenant_id"] for e in publisher.published] == [
        acme.tenant.id,
        globex.tenant.id,
    ]
