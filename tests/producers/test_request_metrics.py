"""Every answer of the API is counted and timed; each webhook by sender and outcome."""

from __future__ import annotations

import json

import pytest
from falcon import testing
from prometheus_client import CollectorRegistry

from infra.metrics.api import ApiMetrics
from infra.vendors.telephony_signing import SIGNATURE_HEADER, sign
from tests.producers.api_support import (
    NOW,
    WEBHOOK,
    current_payload,
    encode,
    post,
    post_body,
    signed_headers,
)
from tests.producers.conftest import TELEPHONY_SECRET, ClientFactory, TenantFixture

CALLKARO = "/api/webhooks/callkaro"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metered(
    make_client: ClientFactory, acme: TenantFixture, registry: CollectorRegistry
) -> testing.TestClient:
    return make_client(metrics=ApiMetrics(registry))


def webhooks(registry: CollectorRegistry, source: str, outcome: str, reason: str = "") -> float:
    labels = {"source": source, "outcome": outcome, "reason": reason}
    return registry.get_sample_value("switchboard_webhooks_received_total", labels) or 0.0


def requests(registry: CollectorRegistry, route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return registry.get_sample_value("switchboard_http_requests_total", labels) or 0.0


def test_elevenlabs_webhooks_are_counted_by_outcome_and_rejections_by_reason(
    metered: testing.TestClient, registry: CollectorRegistry
) -> None:
    body = encode(current_payload("conv_1"))
    assert post_body(metered, body).status_code == 202
    assert post_body(metered, body).status_code == 200  # the same call again
    ignored = {**current_payload("conv_2"), "type": "post_call_audio"}
    assert post(metered, ignored).json["status"] == "ignored"
    assert post(metered, current_payload("conv_3", agent_id="agent_nobody")).status_code == 404
    unsigned = metered.simulate_post(WEBHOOK, body=body, headers={"ElevenLabs-Signature": "t=1"})
    assert unsigned.status_code == 401
    too_large = metered.simulate_post(
        WEBHOOK, body=b"x" * (64 * 1024 + 1), headers=signed_headers(b"x")
    )
    assert too_large.status_code == 413
    assert post_body(metered, b"{not json").status_code == 422

    counts = {
        (outcome, reason): webhooks(registry, "elevenlabs", outcome, reason)
        for outcome, reason in [
            ("accepted", ""),
            ("duplicate", ""),
            ("ignored", ""),
            ("rejected", "unknown_agent"),
            ("rejected", "signature"),
            ("rejected", "too_large"),
            ("rejected", "invalid"),
        ]
    }
    assert set(counts.values()) == {1.0}, counts
    assert registry.get_sample_value(
        "switchboard_http_requests_total",
        {"route": WEBHOOK, "method": "POST", "status": "202"},
    )


def test_a_webhook_without_its_secret_configured_is_rejected_as_unavailable(
    make_client: ClientFactory, acme: TenantFixture, registry: CollectorRegistry
) -> None:
    client = make_client(webhook_secret=None, metrics=ApiMetrics(registry))

    assert post(client, current_payload("conv_1")).status_code == 503

    assert webhooks(registry, "elevenlabs", "rejected", "unavailable") == 1.0


def test_telephony_status_webhooks_are_counted_and_an_unknown_call_is_a_rejection(
    metered: testing.TestClient, registry: CollectorRegistry
) -> None:
    body = json.dumps(
        {"call_id": "prov-1", "status": "completed", "metadata": {"call_id": "call_nowhere"}}
    ).encode()
    headers = {SIGNATURE_HEADER: sign(TELEPHONY_SECRET, body, timestamp=NOW)}

    answer = metered.simulate_post(CALLKARO, body=body, headers=headers)
    forged = metered.simulate_post(CALLKARO, body=body, headers={SIGNATURE_HEADER: "sha256=00"})

    assert (answer.status_code, answer.json["success"]) == (200, False)
    assert forged.status_code == 401
    assert webhooks(registry, "callkaro", "rejected", "unknown_call") == 1.0
    assert webhooks(registry, "callkaro", "rejected", "signature") == 1.0


def test_every_answer_is_counted_by_route_template_method_and_status_and_timed(
    metered: testing.TestClient, registry: CollectorRegistry
) -> None:
    metered.simulate_get("/healthz")
    metered.simulate_get("/api/jobs/job_1")  # no token: 401
    metered.simulate_get("/no/such/page/42")
    metered.simulate_request("TRACE", "/healthz")

    assert requests(registry, "/healthz", "GET", "200") == 1.0
    assert requests(registry, "/api/jobs/{job_id}", "GET", "401") == 1.0
    assert requests(registry, "unmatched", "GET", "404") == 1.0
    assert requests(registry, "/healthz", "other", "405") == 1.0
    assert (
        registry.get_sample_value(
            "switchboard_http_request_duration_seconds_count",
            {"route": "/healthz", "method": "GET"},
        )
        == 1.0
    )
    assert registry.get_sample_value("switchboard_http_requests_in_progress") == 0.0
