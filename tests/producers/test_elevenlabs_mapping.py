from __future__ import annotations

from datetime import UTC, datetime

import falcon
import pytest

from contracts import HealthCheckJobData, PostCallJobData
from infra.store.records import AgentBinding, Tenant
from producers import elevenlabs
from producers.errors import ProblemError
from producers.payloads import parse_document, validate
from tests.producers.api_support import (
    NOW,
    SECRET,
    current_payload,
    legacy_payload,
    sign,
    sign_rotating,
)

TENANT = Tenant(
    id="t1", name="acme", timezone="Europe/Berlin", created_at=datetime(2026, 1, 1, tzinfo=UTC)
)
GENERAL = AgentBinding(agent_id="agent_general", kind="general", tenant=TENANT)
HEALTH = AgentBinding(agent_id="agent_health", kind="health_check", tenant=TENANT)


def _verify(header: str | None, body: bytes = b"{}", now: float = NOW) -> None:
    elevenlabs.verify_signature(header, body, secret=SECRET, now=now, tolerance_s=1800)


def test_a_correct_signature_within_tolerance_passes_both_ways() -> None:
    _verify(sign(b"{}", at=NOW - 1800))
    _verify(sign(b"{}", at=NOW + 1800))


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v0=abc", "malformed"),
        ("t=notanumber,v0=abc", "malformed"),
        (f"t={NOW}", "malformed"),
        ("t=\u00b2,v0=abc", "malformed"),
        (f"t={NOW},v0=\u00e9\u00e9", "does not match"),
        (sign(b"{}", secret="another-secret"), "does not match"),
        (sign(b"{ }"), "does not match"),
        (sign(b"{}", at=NOW - 1801), "from now"),
        (sign(b"{}", at=NOW + 1801), "from now"),
    ],
)
def test_bad_signatures_are_unauthorized_with_a_reason(header: str | None, detail: str) -> None:
    with pytest.raises(falcon.HTTPUnauthorized) as caught:
        _verify(header)
    assert detail in (caught.value.description or "")


def test_the_current_shape_maps_to_a_post_call_job_without_empty_turns() -> None:
    data = elevenlabs.TranscriptionEvent.model_validate(current_payload("conv_9")).data
    contract = elevenlabs.to_contract(data, binding=GENERAL, kind="general", job_id="j1")
    assert isinstance(contract, PostCallJobData)
    assert contract.job_id == "j1"
    assert contract.tenant_id == "t1"
    assert contract.timezone == "Europe/Berlin"
    assert contract.started_at == datetime.fromtimestamp(NOW - 300, tz=UTC)
    assert contract.duration_secs == 95
    assert contract.call_status == "done"
    assert contract.transcript is not None
    assert [(t.role, t.message) for t in contract.transcript] == [
        ("agent", "Hello, how can I help?"),
        ("user", "Please call me back tomorrow."),
    ]


def test_the_older_shape_maps_roles_and_content() -> None:
    data = elevenlabs.TranscriptionEvent.model_validate(legacy_payload()).data
    contract = elevenlabs.to_contract(data, binding=GENERAL, kind="general", job_id="j2")
    assert isinstance(contract, PostCallJobData)
    assert contract.transcript is not None
    assert [(t.role, t.message) for t in contract.transcript] == [
        ("agent", "Good morning."),
        ("user", "Hi, I have a billing question."),
    ]
    assert contract.started_at is None


def test_a_webhook_without_transcript_leaves_it_to_be_fetched() -> None:
    payload = current_payload(transcript=None)
    data = elevenlabs.TranscriptionEvent.model_validate(payload).data
    contract = elevenlabs.to_contract(data, binding=GENERAL, kind="general", job_id="j3")
    assert isinstance(contract, PostCallJobData)
    assert contract.transcript is None


def test_a_turn_with_an_unknown_role_is_dropped_and_the_call_kept() -> None:
    payload = current_payload(
        transcript=[
            {"role": "system", "message": "Tool result: order 123 shipped"},
            {"role": "user", "message": "Where is my order?"},
        ]
    )
    data = elevenlabs.TranscriptionEvent.model_validate(payload).data
    contract = elevenlabs.to_contract(data, binding=GENERAL, kind="general", job_id="j4")
    assert isinstance(contract, PostCallJobData)
    assert contract.transcript is not None
    assert [(t.role, t.message) for t in contract.transcript] == [("user", "Where is my order?")]


def test_health_check_kind_comes_from_the_binding_or_the_dynamic_variable() -> None:
    plain = elevenlabs.TranscriptionEvent.model_validate(current_payload()).data
    flagged = elevenlabs.TranscriptionEvent.model_validate(
        current_payload(
            conversation_initiation_client_data={
                "dynamic_variables": {"call_type": "health_check", "thread_id": "thread-7"}
            }
        )
    ).data
    assert elevenlabs.job_kind(GENERAL, plain) == "general"
    assert elevenlabs.job_kind(HEALTH, plain) == "health_check"
    assert elevenlabs.job_kind(GENERAL, flagged) == "health_check"
    by_binding = elevenlabs.to_contract(plain, binding=HEALTH, kind="health_check", job_id="j4")
    by_variable = elevenlabs.to_contract(flagged, binding=GENERAL, kind="health_check", job_id="j5")
    assert isinstance(by_binding, HealthCheckJobData)
    assert by_binding.thread_id == "conv_1"
    assert isinstance(by_variable, HealthCheckJobData)
    assert by_variable.thread_id == "thread-7"


def test_a_health_check_keeps_the_callers_number_so_forgetting_them_finds_it() -> None:
    payload = current_payload()
    payload["data"]["metadata"]["phone_call"] = {"external_number": "+44 7700 900123"}
    data = elevenlabs.TranscriptionEvent.model_validate(payload).data

    contract = elevenlabs.to_contract(data, binding=HEALTH, kind="health_check", job_id="j6")

    assert isinstance(contract, HealthCheckJobData)
    assert contract.caller_number == "+447700900123"


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"a": NaN}'])
def test_a_body_that_is_not_json_is_unprocessable(body: bytes) -> None:
    with pytest.raises(ProblemError) as caught:
        parse_document(body, max_depth=64)
    assert caught.value.status_code == 422
    assert (caught.value.description or "").startswith("body is not valid JSON")


@pytest.mark.parametrize("literal", [b"1e999", b"-1e400"])
def test_a_number_too_large_for_a_double_is_unprocessable_where_it_is(literal: bytes) -> None:
    with pytest.raises(ProblemError) as caught:
        parse_document(b'{"payload": {"n": ' + literal + b"}}", max_depth=64)
    assert caught.value.status_code == 422
    assert caught.value.description == (
        "invalid field payload.n: is a number out of range (too large for a double)"
    )


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_a_json_body_that_is_not_an_object_is_unprocessable(body: bytes) -> None:
    with pytest.raises(ProblemError) as caught:
        parse_document(body, max_depth=64)
    assert caught.value.status_code == 422
    assert caught.value.description == "body must be a JSON object"


def test_the_event_type_defaults_to_transcription_for_the_older_shape() -> None:
    assert validate(elevenlabs.EventHeader, legacy_payload()).type == "post_call_transcription"
    assert validate(elevenlabs.EventHeader, {"type": "post_call_audio"}).type == "post_call_audio"


def test_several_v0_entries_pass_when_any_one_matches() -> None:
    rotating = sign_rotating(b"{}", ["retired-secret", SECRET, "next-secret"])

    _verify(rotating)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (sign_rotating(b"{}", ["retired-secret", "next-secret"]), "does not match"),
        (f"t={NOW},t={NOW},v0=00", "malformed"),
        (f"t={NOW},v0=,v0=", "no v0"),
    ],
    ids=["none-matches", "two-timestamps", "only-empty-v0"],
)
def test_several_v0_entries_without_a_match_or_two_timestamps_are_unauthorized(
    header: str, detail: str
) -> None:
    with pytest.raises(falcon.HTTPUnauthorized) as caught:
        _verify(header)
    assert detail in (caught.value.description or "")


def test_integers_are_kept_within_64_bits_anywhere_in_the_document() -> None:
    assert parse_document(b'{"a": [9223372036854775807, -9223372036854775808]}', max_depth=8)
    for literal in (b"9223372036854775808", b"-9223372036854775809"):
        with pytest.raises(ProblemError) as caught:
            parse_document(b'{"a": {"b": [' + literal + b"]}}", max_depth=8)
        assert caught.value.extensions["errors"][0]["field"] == "a.b.0"
