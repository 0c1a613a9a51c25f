"""Contract rules: aware datetimes, tolerant reading, immutability, keys, envelopes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import CONTRACTS, CallbackRequest, PostCallJobData
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
        "idempotency_key": "post-call:conv-1",
        "tenant_id": "t-1",
        "job_id": "job-1",
    }
    assert PostCallJobData.model_validate(envelope.payload) == job
