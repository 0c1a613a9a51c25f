"""``switchboard demo``: start the stack, play the voice platform, show what came out.

The demo runs in its own data directory (``<data_dir>/demo``, wiped at the start so
every run is clean) with the embedded defaults only: its child processes get an
environment stripped of ``SWITCHBOARD_*`` and the legacy variable names, so a vendor
configured for real work is never called with sample data. It plays the live-call
service (checkpoints in Valkey) and ElevenLabs (signed webhooks, conversation files
that appear a few seconds late), then reads the results back through the API. Its
daily-calls section (``infra.demo.daily``) adds users in several zones, triggers a tick
and watches the telephony simulator's calls complete.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infra.cli.launch import api_argv, scheduler_argv, worker_argv
from infra.cli.stack import ProcessSpec, Stack, child_env
from infra.demo.daily import BUSY_NUMBER, daily_calls_table, run_daily_calls
from infra.demo.report import print_report
from infra.demo.samples import Sample, conversation_document, load_samples, webhook_payload
from infra.demo.signing import SIGNATURE_HEADER, sign
from infra.embedded import EmbeddedValkey
from infra.settings import LEGACY_NAMES, CheckpointSettings, Settings
from infra.sockets import free_port
from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.tenants import SqlTenantDirectory
from infra.vendors.checkpoints import write_checkpoint

TENANT = "demo"
GENERAL_AGENT = "agent_demo_general"
HEALTH_AGENT = "agent_demo_health"
TIMEZONE = "America/New_York"
WEBHOOK_PATH = "/api/webhooks/elevenlabs/call-ended"
TRANSCRIPT_DELAY_S = 4.0
"""How long after its webhook a call without inline transcript gets its file."""
READY_TIMEOUT_S = 90.0
POLL_TIMEOUT_S = 120.0
FINISHED = {"completed", "failed"}


@dataclass
class DemoRun:
    """The state of one demo run."""

    data_dir: Path
    secret: str
    admin_token: str
    samples: list[Sample]
    job_ids: dict[str, str] = field(default_factory=dict)
    transcripts_due: dict[str, float] = field(default_factory=dict)
    checks: list[tuple[str, str, bool]] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        """Where the child processes' logs go."""
        return self.data_dir / "logs"

    def agent_of(self, sample: Sample) -> str:
        """The agent id the sample's webhook names."""
        return HEALTH_AGENT if sample.kind == "health_check" else GENERAL_AGENT


class DemoFailedError(Exception):
    """The demo cannot go on (a process died, the API never became ready...)."""


def run_demo(settings: Settings, console: Console) -> int:
    """Run the demo end to end; return the exit code (1 if any call did not complete)."""
    run = DemoRun(
        data_dir=(settings.data_dir / "demo").resolve(),
        secret=secrets.token_hex(32),
        admin_token=secrets.token_urlsafe(24),
        samples=load_samples(),
    )
    shutil.rmtree(run.data_dir, ignore_errors=True)
    run.data_dir.mkdir(parents=True)
    console.rule("Switchboard demo")
    with EmbeddedValkey(run.data_dir) as valkey:
        console.print(f"broker: embedded Valkey at {valkey.url} (AOF in {run.data_dir})")
        database_url = f"sqlite:///{run.data_dir / 'switchboard.db'}"
        upgrade(database_url)
        _add_tenant(database_url)
        _write_checkpoints(valkey.url, run.samples)
        port = free_port()
        specs = _specs(run, port=port, broker_url=valkey.url, database_url=database_url)
        console.print(f"starting api (port {port}), worker and scheduler; logs in {run.logs}")
        with Stack(specs, console) as stack:
            try:
                _drive(run, stack, console, f"http://127.0.0.1:{port}")
            except (DemoFailedError, httpx.HTTPError) as error:
                console.print(f"[bold red]demo failed:[/] {error}")
                console.print(f"see the logs in {run.logs}")
                return 1
        console.print("stopped api, worker and scheduler")
    return _outcome(run, console)


def _drive(run: DemoRun, stack: Stack, console: Console, api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10.0) as client:
        _wait_ready(client, stack)
        _post_all(run, client, console)
        _post_invalid(run, client)
        _poll(run, client, stack, console)
        daily = run_daily_calls(client, run.admin_token, TENANT, console)
        run.checks.extend(daily.checks)
        print_report(console, run.samples, run.views, run.checks, _similar(run, client))
        console.print(daily_calls_table(daily))


def _add_tenant(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        directory = SqlTenantDirectory(engine)
        tenant, _key = directory.add_tenant(TENANT, timezone=TIMEZONE)
        directory.bind_agent(tenant.id, GENERAL_AGENT, kind="general")
        directory.bind_agent(tenant.id, HEALTH_AGENT, kind="health_check")
    finally:
        engine.dispose()


def _write_checkpoints(broker_url: str, samples: list[Sample]) -> None:
    """Leave each health-check call's answers where the live-call service would."""
    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    prefix = CheckpointSettings().key_prefix
    try:
        for sample in samples:
            if sample.kind == "health_check":
                thread_id = sample.thread_id or sample.conversation_id
                write_checkpoint(
                    client, key_prefix=prefix, thread_id=thread_id, answers=sample.answers
                )
    finally:
        client.close()


def _specs(run: DemoRun, *, port: int, broker_url: str, database_url: str) -> list[ProcessSpec]:
    env = child_env(
        {
            "SWITCHBOARD_DATA_DIR": str(run.data_dir),
            "SWITCHBOARD_DATABASE__URL": database_url,
            "SWITCHBOARD_BROKER__URL": broker_url,
            "SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET": run.secret,
            "SWITCHBOARD_ADMIN_TOKEN": run.admin_token,
            # No fixed ports beside the API's: the demo may run beside `switchboard dev`.
            "SWITCHBOARD_API__PROMETHEUS_PORT": "0",
            "SWITCHBOARD_WORKER__PROMETHEUS_PORT": "0",
            "SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT": "0",
            "SWITCHBOARD_SCHEDULER__RELAY_INTERVAL_S": "1",
            # Short first backoff: the late transcripts are polled within seconds.
            "SWITCHBOARD_STEPS__MIN_BACKOFF_MS": "500",
            # The telephony simulator plays status webhooks back to this API, quickly,
            # and answers one demo number busy.
            "SWITCHBOARD_SIMULATOR__WEBHOOK_URL": f"http://127.0.0.1:{port}/api/webhooks/callkaro",
            "SWITCHBOARD_SIMULATOR__STEP_S": "0.2",
            "SWITCHBOARD_SIMULATOR__OUTCOMES": json.dumps({BUSY_NUMBER: "busy"}),
        },
        drop_prefixes=("SWITCHBOARD_", *LEGACY_NAMES),
    )
    api = api_argv(host="127.0.0.1", port=port, workers=1, threads=4)
    return [
        ProcessSpec("api", api, env, run.logs / "api.log"),
        ProcessSpec("worker", worker_argv(processes=1, threads=4), env, run.logs / "worker.log"),
        ProcessSpec("scheduler", scheduler_argv(), env, run.logs / "scheduler.log"),
    ]


def _check_alive(stack: Stack) -> None:
    dead = stack.dead()
    if dead is not None:
        name, code = dead
        raise DemoFailedError(f"{name} exited with code {code}")


def _wait_ready(client: httpx.Client, stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        _check_alive(stack)
        if _ready(client):
            return
        time.sleep(0.3)
    raise DemoFailedError(f"the API was not ready within {READY_TIMEOUT_S:g} s")


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False  # not listening yet: gunicorn is still starting


def _post(run: DemoRun, client: httpx.Client, payload: Any, *, secret: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    headers = {SIGNATURE_HEADER: sign(secret or run.secret, body)}
    headers["Content-Type"] = "application/json"
    return client.post(WEBHOOK_PATH, content=body, headers=headers)


def _post_all(run: DemoRun, client: httpx.Client, console: Console) -> None:
    now = int(time.time())
    for sample in run.samples:
        payload = webhook_payload(sample, agent_id=run.agent_of(sample), now=now)
        response = _post(run, client, payload)
        if response.status_code != 202:
            raise DemoFailedError(
                f"{sample.conversation_id}: {response.status_code} {response.text}"
            )
        run.job_ids[sample.conversation_id] = response.json()["job_id"]
        if not sample.inline:
            run.transcripts_due[sample.conversation_id] = time.monotonic() + TRANSCRIPT_DELAY_S
    console.print(f"posted {len(run.samples)} signed webhooks (202 Accepted)")


def _post_invalid(run: DemoRun, client: httpx.Client) -> None:
    first = run.samples[0]
    payload = webhook_payload(first, agent_id=run.agent_of(first), now=int(time.time()))
    again = _post(run, client, payload)
    run.checks.append(
        (
            "the same webhook again → 200, same job id",
            f"{again.status_code} {again.json().get('job_id')}",
            again.status_code == 200
            and again.json().get("job_id") == run.job_ids[first.conversation_id],
        )
    )
    forged = _post(run, client, payload, secret=secrets.token_hex(32))  # not the real one
    run.checks.append(("a bad signature → 401", str(forged.status_code), forged.status_code == 401))
    payload["data"].pop("conversation_id")
    invalid = _post(run, client, payload)
    run.checks.append(
        ("no conversation_id → 422", str(invalid.status_code), invalid.status_code == 422)
    )


def _deliver_due_transcripts(run: DemoRun) -> None:
    """Write the conversation files whose time has come (the platform finished them)."""
    directory = run.data_dir / "conversations"
    for conversation_id, due in list(run.transcripts_due.items()):
        if time.monotonic() < due:
            continue
        sample = next(s for s in run.samples if s.conversation_id == conversation_id)
        document = conversation_document(
            sample, agent_id=run.agent_of(sample), now=int(time.time())
        )
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".{conversation_id}.json.tmp"
        temporary.write_text(json.dumps(document), encoding="utf-8")
        # Renamed into place so the archive never reads a half-written file.
        temporary.replace(directory / f"{conversation_id}.json")
        del run.transcripts_due[conversation_id]


def _poll(run: DemoRun, client: httpx.Client, stack: Stack, console: Console) -> None:
    headers = {"Authorization": f"Bearer {run.admin_token}"}
    pending = [s.conversation_id for s in run.samples]
    columns = (
        TextColumn("processing calls"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + POLL_TIMEOUT_S
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("calls", total=len(pending))
        while pending and time.monotonic() < deadline:
            _check_alive(stack)
            _deliver_due_transcripts(run)
            for conversation_id in list(pending):
                response = client.get(f"/api/calls/{conversation_id}", headers=headers)
                response.raise_for_status()
                view = response.json()
                run.views[conversation_id] = view
                if view["status"] in FINISHED:
                    pending.remove(conversation_id)
            progress.update(task, completed=len(run.samples) - len(pending))
            if pending:
                time.sleep(0.5)


def _similar(run: DemoRun, client: httpx.Client) -> Callable[[str], list[tuple[str, float]]]:
    headers = {"Authorization": f"Bearer {run.admin_token}"}

    def similar(conversation_id: str) -> list[tuple[str, float]]:
        response = client.get(
            f"/api/calls/{conversation_id}/similar", params={"k": 2}, headers=headers
        )
        if response.status_code == 409:  # never indexed (the call failed)
            return []
        response.raise_for_status()
        return [(s["conversation_id"], float(s["score"])) for s in response.json()["similar"]]

    return similar


def _outcome(run: DemoRun, console: Console) -> int:
    completed = [c for c, v in run.views.items() if v.get("status") == "completed"]
    checks_ok = all(ok for _name, _got, ok in run.checks)
    if len(completed) == len(run.samples) and checks_ok:
        console.print(f"[bold green]all {len(completed)} calls completed[/]")
        return 0
    console.print(
        f"[bold red]{len(run.samples) - len(completed)} of {len(run.samples)} calls did not "
        f"complete[/]" + ("" if checks_ok else "; an intake check failed")
    )
    console.print(f"logs: {run.logs}")
    return 1
