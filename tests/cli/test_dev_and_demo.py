"""The ``dev`` and ``demo`` commands with the real api, worker and scheduler processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.sockets import free_port
from tests.e2e.processes import children

pytestmark = pytest.mark.e2e

SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        SWITCHBOARD_DATA_DIR=str(data_dir),
        SWITCHBOARD_API__WORKERS="1",
        SWITCHBOARD_WORKER__THREADS="2",
        SWITCHBOARD_API__PROMETHEUS_PORT="0",
        SWITCHBOARD_WORKER__PROMETHEUS_PORT="0",
        SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT="0",
    )
    return env


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _worker_groups(dev: int, timeout_s: float = 60) -> list[int]:
    """``dev``'s two worker groups (Dramatiq main processes), once each has its process."""
    deadline = time.monotonic() + timeout_s
    while True:
        groups = [pid for pid in children(dev) if "actors" in _cmdline(pid)]
        if len(groups) == 2 and all(children(group) for group in groups):
            return groups
        assert time.monotonic() < deadline, groups
        time.sleep(0.2)


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""  # gone meanwhile


def test_dev_runs_the_stack_restarts_a_killed_worker_alone_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [SWITCHBOARD, "dev", "--port", str(port)],
            env=_env(data_dir) | {"SWITCHBOARD_WORKER__PROCESSES": "2"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not _ready(f"http://127.0.0.1:{port}") and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.5)
        assert _ready(f"http://127.0.0.1:{port}"), log_path.read_text()
        assert (data_dir / "valkey.json").exists()
        assert (data_dir / "switchboard.db").exists()

        # The OOM killer takes one worker process: its group alone is started again.
        first, second = _worker_groups(process.pid)
        others = set(children(process.pid)) - {second}  # valkey, api, scheduler, 1st group
        [victim] = children(second)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while second in children(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        groups = _worker_groups(process.pid)
        assert first in groups
        assert second not in groups
        assert others <= set(children(process.pid))
        assert process.poll() is None
        assert _ready(f"http://127.0.0.1:{port}")
        assert "the others keep running" in log_path.read_text()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    output = log_path.read_text()
    assert "[api]" in output
    assert "[worker-1]" in output
    assert "[worker-2]" in output
    assert "[scheduler]" in output
    assert not (data_dir / "valkey.json").exists()
    assert not _ready(f"http://127.0.0.1:{port}")


def test_the_demo_completes_every_sample_call(tmp_path: Path) -> None:
    done = subprocess.run(
        [SWITCHBOARD, "demo"],
        env=_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "all 24 calls completed" in done.stdout
    assert "a bad signature → 401" in done.stdout
    assert (tmp_path / "data" / "demo" / "logs" / "worker.log").exists()


def test_a_process_command_without_a_broker_url_owns_the_embedded_valkey_it_started(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir)
    upgrade = subprocess.run(
        [SWITCHBOARD, "db", "upgrade"], env=env, capture_output=True, timeout=60, check=False
    )
    assert upgrade.returncode == 0, upgrade.stderr
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [SWITCHBOARD, "scheduler"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "scheduler.started" not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.3)
        assert (data_dir / "valkey.json").exists(), log_path.read_text()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert "scheduler.stopped" in log_path.read_text()
    assert not (data_dir / "valkey.json").exists()
