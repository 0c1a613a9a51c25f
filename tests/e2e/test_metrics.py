"""``/metrics`` of the API, the worker and the scheduler, each counting across its processes.

The stack runs two gunicorn workers and two Dramatiq worker processes: what any of them
counted is in its role's scrape, once. The queues' state comes from the scheduler alone.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.sockets import free_port
from tests.e2e.processes import Stack, StackFactory, call_ended_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TURNS = [
    ("agent", "Hello, this is Ava from Acme Energy. How can I help?"),
    ("user", "My invoice is wrong. Please call me back tomorrow morning."),
]
CALLS = [f"e2e_metrics_{n}" for n in range(4)]
SCRAPE_TIMEOUT_S = 20.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of ``url``'s exposition, by name and labels."""
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series carrying at least ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in samples.items() if n == name and wanted <= series)


def eventually(url: str, check: Callable[[Samples], bool]) -> Samples:
    """Scrape ``url`` until ``check`` holds (each process writes its files on its own)."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    samples = scrape(url)
    while not check(samples):
        if time.monotonic() > deadline:
            pytest.fail(f"{url}/metrics never satisfied the check:\n{sorted(samples)}")
        time.sleep(0.3)
        samples = scrape(url)
    return samples


def _drive(stack: Stack) -> None:
    for conversation in CALLS:
        assert (
            stack.post(call_ended_webhook(conversation, "agent_general", TURNS)).status_code == 202
        )
    again = call_ended_webhook(CALLS[0], "agent_general", TURNS)
    assert stack.post(again).status_code == 200
    assert stack.post(again, signature="t=1,v0=00").status_code == 401
    views = stack.wait_done(CALLS)
    assert {view["status"] for view in views.values()} == {"completed"}, views


def _refused_by_the_edge(stack: Stack) -> int:
    """Announce a body far over the limit: the edge answers 413 before gunicorn sees it."""
    port = int(stack.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/webhooks/elevenlabs/call-ended HTTP/1.1\r\nHost: api\r\n"
            b"Content-Length: 999999999\r\n\r\n"
        )
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_each_process_serves_metrics_counted_across_its_own_processes(
    stack_factory: StackFactory, redis_url: str, tmp_path: Path
) -> None:
    api_port, scheduler_port = free_port(), free_port()
    stack = stack_factory(
        redis_url,
        f"sqlite:///{tmp_path / 'e2e.db'}",
        {
            "SWITCHBOARD_API__WORKERS": "2",
            "SWITCHBOARD_API__PROMETHEUS_PORT": str(api_port),
            "SWITCHBOARD_WORKER__PROCESSES": "2",
            "SWITCHBOARD_WORKER__THREADS": "2",
            "SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT": str(scheduler_port),
        },
    )
    _drive(stack)
    assert _refused_by_the_edge(stack) == 413

    api = scrape(f"http://127.0.0.1:{api_port}")
    # The edge in front counts what it answered itself; gunicorn's master serves that too.
    assert value(api, "switchboard_edge_refused_requests_total", status="413") == 1
    assert ("switchboard_edge_connections", frozenset()) in api
    received = "switchboard_webhooks_received_total"
    assert value(api, received, source="elevenlabs", outcome="accepted", reason="") == len(CALLS)
    assert value(api, received, source="elevenlabs", outcome="duplicate", reason="") == 1
    assert value(api, received, source="elevenlabs", outcome="rejected", reason="signature") == 1
    route = "/api/webhooks/elevenlabs/call-ended"
    assert total(api, "switchboard_http_requests_total", route=route) == len(CALLS) + 2
    # Every gunicorn worker counted in files of its own, under the master's directory.
    assert len(list((stack.data_dir / "metrics" / "api").glob("counter_*.db"))) >= 1

    # Each step of each call ran once, in one or the other worker process.
    worker = eventually(
        stack.worker_probes,
        lambda s: (
            value(s, "switchboard_job_duration_seconds_count", pipeline="post_call") == len(CALLS)
        ),
    )
    for actor in ("fetch_transcript", "analyze_call", "index_call", "persist_call"):
        runs = total(worker, "switchboard_message_run_seconds_count", actor=actor)
        waits = total(worker, "switchboard_message_queue_wait_seconds_count", actor=actor)
        assert (runs, waits) == (len(CALLS), len(CALLS)), actor
    assert total(worker, "dramatiq_messages_total", actor_name="persist_call") == len(CALLS)
    assert total(worker, "switchboard_job_duration_seconds_sum") > 0

    scheduler = eventually(
        f"http://127.0.0.1:{scheduler_port}",
        lambda s: value(s, "switchboard_scheduler_leader") == 1,
    )
    persist = {"queue": "calls.persist", "pipeline": "post_call"}
    assert value(scheduler, "switchboard_queue_ready_messages", **persist) == 0
    assert value(scheduler, "switchboard_queue_dead_lettered_messages", **persist) == 0
    assert value(scheduler, "switchboard_inbox_pending_jobs") == 0
    assert value(scheduler, "switchboard_scheduler_last_tick_timestamp_seconds", tick="relay") > 0
    # The queues' state is the scheduler's alone: the other processes never export it.
    assert not [name for name, _ in (*api, *worker) if name.startswith("switchboard_queue_")]
