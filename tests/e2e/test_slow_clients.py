"""Slow clients against the API as ``switchboard api`` runs it (2 workers of 4 threads).

64 connections stall, half in the request head and half in the body
(``benchmarks.slow_clients``). While they do, ``/healthz`` and a signed webhook must still
answer at once; and the stalled connections must end after the API's header and body
timeouts (shortened here to 2 s), with a ``408`` or by being closed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from benchmarks.slow_clients import (
    healthz_call,
    signed_webhook_call,
    stalled_clients,
    time_calls,
    wait_outcomes,
)
from infra.sockets import free_port
from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.tenants import SqlTenantDirectory
from tests.e2e.processes import (
    SECRET,
    call_ended_webhook,
    stack_environment,
    start_process,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SLOW_CLIENTS = 64
STALL_TIMEOUT_S = 2.0
"""The API's header and body timeouts in these tests."""
ANSWER_WITHIN_S = 1.5
"""Measured answers take tens of milliseconds (README); the margin is for a loaded CI
machine. A thread-starved API never answers at all."""
SLOW_CLIENTS_REDIS_DB = 12


@dataclass(frozen=True)
class Api:
    url: str
    port: int
    logs: Path


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, redis_server_url: str) -> Iterator[Api]:
    """``switchboard api`` with the default 2 workers of 4 threads and short timeouts."""
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    broker_url = f"{redis_server_url.rstrip('/')}/{SLOW_CLIENTS_REDIS_DB}"
    port = free_port()
    env = stack_environment(tmp_path, broker_url, database_url, port, free_port())
    env.update(
        SWITCHBOARD_API__WORKERS="2",
        SWITCHBOARD_API__THREADS="4",
        SWITCHBOARD_API__HEADER_TIMEOUT_S=str(STALL_TIMEOUT_S),
        SWITCHBOARD_API__BODY_TIMEOUT_S=str(STALL_TIMEOUT_S),
    )
    upgrade(database_url)
    engine = create_engine(database_url)
    tenants = SqlTenantDirectory(engine)
    tenant, _ = tenants.add_tenant("acme")
    tenants.bind_agent(tenant.id, "agent_general", kind="general")
    engine.dispose()
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = {"api": start_process("api", env, logs, "api", "--port", str(port))}
    try:
        wait_ready(f"http://127.0.0.1:{port}", processes, logs)
        yield Api(f"http://127.0.0.1:{port}", port, logs)
    finally:
        stop_processes(processes)
        with redis.Redis.from_url(broker_url) as client:
            client.flushdb()


def _webhook(conversation_id: str) -> bytes:
    return call_ended_webhook(conversation_id, "agent_general", [("user", "hello")])


def test_health_and_webhooks_answer_at_once_while_64_clients_stall(api: Api) -> None:
    healthz = healthz_call(api.url, timeout_s=ANSWER_WITHIN_S)
    webhook = signed_webhook_call(api.url, SECRET, _webhook, timeout_s=ANSWER_WITHIN_S)

    with stalled_clients(api.port, SLOW_CLIENTS):
        time.sleep(0.3)  # every stalled connection accepted and waiting
        health = time_calls(healthz, 5)
        hooks = time_calls(webhook, 5)

    assert (health.failures, dict(health.statuses)) == (0, {200: 5}), health.summary()
    assert (hooks.failures, dict(hooks.statuses)) == (0, {202: 5}), hooks.summary()
    assert max(health.latencies_s + hooks.latencies_s) < ANSWER_WITHIN_S, (
        health.summary(),
        hooks.summary(),
    )


def test_stalled_clients_end_with_a_408_or_a_close_after_the_timeouts(api: Api) -> None:
    with stalled_clients(api.port, SLOW_CLIENTS) as sockets:
        since = time.monotonic()
        outcomes = wait_outcomes(sockets, since, timeout_s=STALL_TIMEOUT_S + 8)

    assert set(outcomes.kinds) <= {"408", "closed"}, outcomes.kinds
    assert sum(outcomes.kinds.values()) == SLOW_CLIENTS
    # Ended by the timeouts, not refused on arrival: none before the timeout ran out.
    assert min(outcomes.ended_after_s) > STALL_TIMEOUT_S * 0.9, sorted(outcomes.ended_after_s)
    for answer in outcomes.first_answers:
        if answer:
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"content-type: application/problem+json" in head.lower()
            assert json.loads(body)["status"] == 408
    assert healthz_call(api.url)() == 200
