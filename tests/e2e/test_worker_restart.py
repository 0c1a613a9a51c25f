"""A worker process killed like the OOM killer kills (SIGKILL) is restarted on its own.

Dramatiq's main process stops every worker process when one dies; ``switchboard worker``
therefore runs one Dramatiq process group per worker process and restarts a group that
dies, while the others go on. Here: two groups, the second one's worker process is
killed, and the platform goes on processing calls without anything else restarting.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import StackFactory, call_ended_webhook, children

pytestmark = pytest.mark.e2e


def _groups(supervisor: int, want: int, timeout_s: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout_s
    groups = children(supervisor)
    while (len(groups) != want or not all(children(g) for g in groups)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
        groups = children(supervisor)
    assert len(groups) == want, groups
    return groups


def test_a_killed_worker_process_is_restarted_alone_and_calls_still_complete(
    stack_factory: StackFactory, redis_url: str, tmp_path: Path
) -> None:
    stack = stack_factory(
        redis_url,
        f"sqlite:///{tmp_path / 'restart.db'}",
        {"SWITCHBOARD_WORKER__PROCESSES": "2"},
    )
    supervisor = stack.processes["worker"]
    first, second = _groups(supervisor.pid, 2)
    [victim] = children(second)  # the second group serves no probe port: one process
    survivors = children(first)

    os.kill(victim, signal.SIGKILL)

    deadline = time.monotonic() + 30
    while second in children(supervisor.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    groups = _groups(supervisor.pid, 2)
    assert supervisor.poll() is None
    assert first in groups
    assert second not in groups
    assert children(first) == survivors
    assert httpx.get(f"{stack.worker_probes}/healthz", timeout=5).status_code == 200
    log = (stack.logs / "worker.log").read_text(errors="replace")
    assert "worker-2 exited with code" in log
    assert "the others keep running" in log

    body = call_ended_webhook(
        "e2e_conv_after_kill",
        "agent_general",
        [("agent", "Hello, Acme support."), ("user", "Please cancel my order, thanks.")],
    )
    assert stack.post(body).status_code == 202
    views = stack.wait_done(["e2e_conv_after_kill"])
    assert views["e2e_conv_after_kill"]["status"] == "completed"
    assert stack.processes["api"].poll() is None
    assert stack.processes["scheduler"].poll() is None
