"""Calls placed are counted by outcome at the telephony port, and every error goes on up."""

from __future__ import annotations

from datetime import date

import pytest
from prometheus_client import CollectorRegistry

from contracts.daily_calls import PlaceUserCallJobData
from contracts.errors import OutcomeUnknown, PermanentError, SwitchboardError, TransientError
from infra.metrics.outbound import CountedTelephony, counted
from infra.metrics.work import WorkMetrics
from tests.fakes import FakeTelephony


def _command() -> PlaceUserCallJobData:
    return PlaceUserCallJobData(
        job_id="job_tick",
        correlation_id="call_1",
        tenant_id="tenant-acme",
        call_id="call_1",
        phone="+14155550100",
        attempt=1,
        user_id="usr_1",
        local_date=date(2026, 12, 4),
    )


def outcomes(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "switchboard_outbound_requests_total"
    }


def test_each_call_is_counted_by_what_the_adapter_answered_and_errors_propagate() -> None:
    registry = CollectorRegistry()
    inner = FakeTelephony(vendor="callkaro")
    telephony = CountedTelephony(inner, WorkMetrics(registry))
    failures: list[SwitchboardError] = [
        TransientError("connection refused"),
        PermanentError("403 bad key"),
        OutcomeUnknown("read timeout"),
    ]

    assert telephony.place(_command()) == "prov-1"
    for failure in failures:
        inner.failure = failure
        with pytest.raises(type(failure)):
            telephony.place(_command())

    assert telephony.vendor == "callkaro"
    assert outcomes(registry) == {"sent": 1, "failed": 1, "refused": 1, "unknown": 1}


def test_an_unexpected_error_counts_as_unknown_it_may_have_gone_out() -> None:
    registry = CollectorRegistry()

    with pytest.raises(KeyError), counted(WorkMetrics(registry), "call"):
        raise KeyError("a bug")

    assert outcomes(registry) == {"unknown": 1}
