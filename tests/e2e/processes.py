"""The end-to-end stack: gunicorn, dramatiq and the scheduler as real processes.

``tests/e2e/conftest.py`` exposes the ``stack_factory`` fixture; tests import the rest.

``stack_factory`` starts the three on a broker and a database the test chooses, with
one tenant ``acme`` (agents ``agent_general`` and ``agent_health``), the telephony
simulator playing its status webhooks back to the API, and the logs in files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from infra.demo.signing import sign
from infra.sockets import free_port

SECRET = "e2e-webhook-secret"
ADMIN = "e2e-admin-token"
BIN = Path(sys.executable).parent


def call_ended_webhook(conversation_id: str, agent_id: str, turns: list[tuple[str, str]]) -> bytes:
    """An ElevenLabs post-call webhook body, with a field ElevenLabs may add one day."""
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


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command may hold spaces and parentheses: the fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``switchboard <args>`` to the end; its stdout and stderr are captured."""
    return subprocess.run(
        [str(BIN / "switchboard"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``switchboard <args>``, which must succeed; its stdout."""
    done = run_cli(env, *args)
    assert done.returncode == 0, f"switchboard {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def start_process(
    name: str, env: dict[str, str], logs: Path, *args: str
) -> subprocess.Popen[bytes]:
    """Start ``switchboard <args>`` in a session of its own, output in ``<logs>/<name>.log``."""
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


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process's group, then SIGKILL what is left after 20 s."""
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def wait_ready(url: str, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    """Wait until the API at ``url`` is ready; fail when a process exits first."""
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


def stack_environment(
    tmp_path: Path, broker_url: str, database_url: str, port: int, worker_probes: int
) -> dict[str, str]:
    """The stack's settings: ours minus any ``SWITCHBOARD_*``, fast intervals, test secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_BROKER__URL=broker_url,
        SWITCHBOARD_BROKER__NAMESPACE=f"e2e-{port}",
        SWITCHBOARD_DATABASE__URL=database_url,
        SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET=SECRET,
        SWITCHBOARD_ADMIN_TOKEN=ADMIN,
        SWITCHBOARD_API__PROMETHEUS_PORT="0",
        SWITCHBOARD_WORKER__PROMETHEUS_PORT=str(worker_probes),
        SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT="0",
        SWITCHBOARD_WORKER__PROCESSES="1",
        SWITCHBOARD_WORKER__THREADS="4",
        SWITCHBOARD_API__WORKERS="1",
        SWITCHBOARD_STEPS__MIN_BACKOFF_MS="200",
        SWITCHBOARD_SCHEDULER__RELAY_INTERVAL_S="1",
        SWITCHBOARD_SCHEDULER__RELAY_MIN_AGE_S="0.5",
        SWITCHBOARD_BROKER__MAINTENANCE_INTERVAL_S="2",
        SWITCHBOARD_SIMULATOR__WEBHOOK_URL=f"http://127.0.0.1:{port}/api/webhooks/callkaro",
        SWITCHBOARD_SIMULATOR__STEP_S="0.05",
    )
    return env


class StackFactory(Protocol):
    """Starts a stack on a broker and a database."""

    def __call__(
        self, broker_url: str, database_url: str, extra_env: dict[str, str] | None = None
    ) -> Stack:
        """The running stack."""
        ...


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[StackFactory]:
    """Starts stacks (``extra_env`` adds settings); stops them after the test."""
    stacks: list[Stack] = []

    def start(broker_url: str, database_url: str, extra_env: dict[str, str] | None = None) -> Stack:
        port, worker_probes = free_port(), free_port()
        env = stack_environment(tmp_path, broker_url, database_url, port, worker_probes)
        env.update(extra_env or {})
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        cli(env, "db", "upgrade")
        out = cli(
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
        # Workers, processes and threads come from the settings: extra_env may change them.
        processes = {
            "api": start_process("api", env, logs, "api", "--port", str(port)),
            "worker": start_process("worker", env, logs, "worker"),
            "scheduler": start_process("scheduler", env, logs, "scheduler"),
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
        wait_ready(stack.url, processes, logs)
        return stack

    yield start
    for stack in stacks:
        stop_processes(stack.processes)
