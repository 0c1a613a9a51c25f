"""Contracts as Dramatiq messages: the function other services publish with."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import BY_NAME, Contract, DailyCallsTick
from contracts.messages import (
    UnknownContractError,
    contract_by_name,
    dramatiq_message,
    message_options,
)
from infra.bus.publishing import Envelope
from tests.builders import make_analyzed, make_health_check_job, make_post_call_job

SLOT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _tick() -> DailyCallsTick:
    return DailyCallsTick(job_id="tick-1", correlation_id="tick-1", slot=SLOT)


def test_a_jobs_message_is_its_route_its_json_and_its_identity() -> None:
    job = make_post_call_job()
    assert dramatiq_message(job) == {
        "queue_name": "calls.transcript",
        "actor_name": "fetch_transcript",
        "args": [job.model_dump(mode="json")],
        "kwargs": {},
        "options": {
            "contract": "PostCallJobData",
            "schema_version": 1,
            "job_id": job.job_id,
            "correlation_id": job.conversation_id,
            "idempotency_key": job.idempotency_key,
            "tenant_id": job.tenant_id,
        },
    }


def test_a_message_without_a_tenant_carries_no_tenant_option() -> None:
    assert "tenant_id" not in message_options(_tick())


@pytest.mark.parametrize(
    "contract", [make_post_call_job(), make_analyzed(), make_health_check_job(), _tick()]
)
def test_switchboards_own_envelope_is_built_from_the_same_message(contract: Contract) -> None:
    message = dramatiq_message(contract)
    envelope = Envelope.of(contract)
    assert (envelope.queue, envelope.actor) == (message["queue_name"], message["actor_name"])
    assert [envelope.payload] == message["args"]
    assert envelope.options == message["options"]


def test_a_message_is_json_and_the_same_for_equal_contracts() -> None:
    message = dramatiq_message(make_post_call_job())
    assert json.loads(json.dumps(message)) == message
    assert dramatiq_message(make_post_call_job()) == message


def test_a_contract_is_found_by_the_name_its_message_carries() -> None:
    job = make_post_call_job()
    message = dramatiq_message(job)
    assert contract_by_name(message["options"]["contract"], message["args"][0]) == job
    assert set(BY_NAME) >= {"PostCallJobData", "DailyCallsTick"}


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownContractError, match="PostCallJobData"):
        contract_by_name("PostCallJob", {})


def test_an_invalid_payload_is_refused_by_the_named_contract() -> None:
    with pytest.raises(ValidationError, match="conversation_id"):
        contract_by_name("PostCallJobData", {"job_id": "job-1", "tenant_id": "t-1"})
