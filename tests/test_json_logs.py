"""With JSON logs on, every line a process prints is one JSON object.

The processes run for real, as in production, with ``SWITCHBOARD_LOG_FORMAT=json``:
``switchboard db upgrade`` (Alembic), ``switchboard api`` (gunicorn's master, worker and
access log) and ``switchboard worker`` (Dramatiq's main process, worker process and the
probes' fork process); then the API and the worker started on a database that is not
migrated, past the CLI's own check, so they fail the way only they can (gunicorn prints
the error of a worker that failed to boot, Dramatiq's child dies in its setup). Their
stdout and stderr are read back line by line.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.cli.launch import api_argv, worker_argv
from infra.sockets import free_port
from infra.store.migrate import upgrade
from tests.e2e.processes import (
    run_cli,
    stack_environment,
    start_process,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

READY_TIMEOUT_S = 30.0


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every non-empty line of ``output`` parsed; fails on the first that is no JSON object."""
    parsed = []
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n--- output ---\n{output}")
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The settings of the processes: JSON logs, a SQLite file, the test's Redis database."""
    database_url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    environment = stack_environment(tmp_path, redis_url, database_url, free_port(), free_port())
    environment["SWITCHBOARD_LOG_FORMAT"] = "json"
    return environment


def _migrated(env: dict[str, str]) -> dict[str, str]:
    # In this process: a second `switchboard db upgrade` would only cost seconds.
    upgrade(env["SWITCHBOARD_DATABASE__URL"])
    return env


def _wait_for(text: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, (
            f"no {text!r} in {READY_TIMEOUT_S} s:\n{log.read_text()}"
        )
        time.sleep(0.1)


def test_db_upgrade_prints_alembics_lines_and_its_own_as_json(env: dict[str, str]) -> None:
    done = run_cli(env, "db", "upgrade")

    assert done.returncode == 0, done.stderr
    logged, printed = json_lines(done.stderr), json_lines(done.stdout)
    assert any(line["event"].startswith("Running upgrade") for line in logged)
    assert {line["process"] for line in logged + printed} == {"migrate"}
    assert "is at revision" in printed[0]["event"]


def test_the_api_prints_json_lines_and_one_access_line_per_request(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    api = start_process("api", _migrated(env), tmp_path, "api", "--port", str(port))
    try:
        wait_ready(f"http://127.0.0.1:{port}", {"api": api}, tmp_path)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        missing = httpx.get(f"http://127.0.0.1:{port}/nowhere?token=secret", timeout=5)
        assert missing.status_code == 404
    finally:
        stop_processes({"api": api})

    lines = json_lines((tmp_path / "api.log").read_text())
    assert {line["process"] for line in lines} == {"api"}
    assert any(line["event"].startswith("Starting gunicorn") for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert {(a["method"], a["path"], a["status"]) for a in access} >= {
        ("GET", "/healthz", 200),
        ("GET", "/nowhere", 404),
    }
    assert all(a["remote_addr"] == "127.0.0.1" and a["duration_ms"] >= 0 for a in access)


def test_the_worker_prints_json_lines_from_every_dramatiq_process(
    env: dict[str, str], tmp_path: Path
) -> None:
    worker = start_process(
        "worker", _migrated(env), tmp_path, "worker", "--processes", "1", "--threads", "2"
    )
    try:
        _wait_for("Worker process is ready for action.", tmp_path / "worker.log", worker)
        _wait_for("serve_worker_probes' is ready", tmp_path / "worker.log", worker)
    finally:
        stop_processes({"worker": worker})

    lines = json_lines((tmp_path / "worker.log").read_text())
    loggers = {line["logger"] for line in lines}
    assert {"dramatiq.MainProcess", "dramatiq.WorkerProcess(0)", "actors.worker"} <= loggers
    assert "dramatiq.ForkProcess(0)" in loggers
    assert {line["process"] for line in lines} <= {"worker", "worker-probes"}


@pytest.mark.parametrize(
    "argv",
    [
        api_argv(host="127.0.0.1", port=free_port(), workers=1, threads=1),
        worker_argv(processes=1, threads=1),
    ],
    ids=["gunicorn", "dramatiq"],
)
def test_a_process_that_cannot_start_says_why_in_json_lines(
    env: dict[str, str], argv: list[str]
) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode != 0
    lines = json_lines(done.stdout + done.stderr)
    assert any("is not migrated" in json.dumps(line) for line in lines)
    assert all("Traceback" not in line["event"] for line in lines)
