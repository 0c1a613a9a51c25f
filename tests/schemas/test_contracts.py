"""Contract rules: aware datetimes, tolerant reading, immutability, keys, envelopes."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import CONTRACTS, CallbackRequest, PostCallJobData
from contracts.fields import NOT_RESIDENT_ZONES
from contracts.users import CallPreferences
from infra.bus.publishing import Envelope

BASE = {
    "job_id": "job-1",
    "tenant_id": "t-1",
    "conversation_id": "conv-1",
    "agent_id": "agent-1",
}


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone offset"):
        CallbackRequest(due_at=datetime(2026, 1, 1, 10), reason="asked")  # noqa: DTZ001


def test_unknown_fields_are_ignored_for_rolling_deploys() -> None:
    job = PostCallJobData.model_validate({**BASE, "added_in_a_later_version": 1})
    assert job.conversation_id == "conv-1"


def test_contracts_are_frozen() -> None:
    job = PostCallJobData.model_validate(BASE)
    with pytest.raises(ValidationError, match="frozen"):
        job.conversation_id = "other"  # type: ignore[misc]


def test_every_contract_has_a_distinct_route_and_documented_fields() -> None:
    routes = [c.route for c in CONTRACTS]
    assert len({r.queue for r in routes}) == len(routes)
    assert len({r.actor for r in routes}) == len(routes)
    for contract in CONTRACTS:
        for name, field in contract.model_fields.items():
            assert field.description, f"{contract.__name__}.{name} has no description"


def test_the_envelope_carries_route_payload_and_tracing_options() -> None:
    job = PostCallJobData.model_validate(
        {**BASE, "started_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC)}
    )
    envelope = Envelope.of(job)
    assert (envelope.queue, envelope.actor) == ("calls.transcript", "fetch_transcript")
    assert envelope.payload["started_at"] == "2026-03-01T09:30:00Z"
    assert envelope.options == {
        "contract": "PostCallJobData",
        "schema_version": 1,
        "correlation_id": "conv-1",
        "idempotency_key": "post-call:t-1:conv-1",
        "tenant_id": "t-1",
        "job_id": "job-1",
    }
    assert envelope.payload["correlation_id"] == "conv-1"
    assert PostCallJobData.model_validate(envelope.payload) == job


def test_job_identity_is_declared_and_validated_when_the_contract_is_built() -> None:
    for contract in CONTRACTS:
        assert {"job_id", "tenant_id", "correlation_id"} <= set(contract.model_fields)
    with pytest.raises(ValidationError, match="job_id"):
        PostCallJobData.model_validate({k: v for k, v in BASE.items() if k != "job_id"})
    with pytest.raises(ValidationError, match="tenant_id"):
        PostCallJobData.model_validate({**BASE, "tenant_id": None})


def test_a_calls_correlation_id_is_its_conversation_id_whatever_the_producer_sent() -> None:
    job = PostCallJobData.model_validate({**BASE, "correlation_id": "request-42"})
    assert job.correlation_id == "conv-1"
    assert "correlation_id" not in PostCallJobData.model_json_schema()["required"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("conversation_id", "conv/1"),
        ("conversation_id", "x" * 129),
        ("conversation_id", ".."),
        ("agent_id", ""),
        ("duration_secs", 2**31),
        ("duration_secs", -1),
        ("call_status", "do\x00ne"),
        ("timezone", "Mars/Olympus_Mons"),
        ("started_at", "9999-12-31T23:00:00-05:00"),
        ("started_at", "1969-12-31T23:59:59Z"),
    ],
)
def test_values_no_store_can_hold_are_refused_when_the_contract_is_built(
    field: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=field):
        PostCallJobData.model_validate({**BASE, field: value})


@pytest.mark.parametrize("text", ["nul \x00 inside", "lone \ud800 surrogate"])
def test_transcript_text_must_be_storable_and_the_error_never_echoes_it(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PostCallJobData.model_validate(
            {**BASE, "transcript": [{"role": "user", "message": f"secret {text}"}]}
        )
    assert "transcript.0.message" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_user_may_live_in_every_zone_of_the_database() -> None:
    zones = zoneinfo.available_timezones() - set(NOT_RESIDENT_ZONES)
    assert {"UTC", "Europe/London", "Asia/Kolkata", "America/Argentina/Buenos_Aires"} <= zones

    refused = []
    for zone in sorted(zones):
        try:
            CallPreferences(call_time="09:00", local_tz=zone)
        except ValidationError:
            refused.append(zone)

    assert refused == []


@pytest.mark.parametrize(
    ("zone", "says"),
    [
        ("localtime", "the server's own zone"),
        ("LocalTime", "the server's own zone"),
        ("posixrules", "template for POSIX TZ strings"),
        ("Factory", "placeholder for a machine whose zone is not set"),
        ("posix/Europe/London", "use 'Europe/London'"),
        ("right/Asia/Kolkata", "use 'Asia/Kolkata'"),
    ],
)
def test_a_user_may_not_live_in_the_servers_zone_or_the_zone_databases_own_files(
    zone: str, says: str
) -> None:
    with pytest.raises(ValidationError, match="local_tz") as caught:
        CallPreferences(call_time="09:00", local_tz=zone)

    [error] = caught.value.errors()
    assert says in error["msg"]
