from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from infra.cli.stack import ProcessSpec, Stack, child_env

PY = sys.executable


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, color_system=None), buffer


def _spec(name: str, code: str, log_path: Path | None = None) -> ProcessSpec:
    return ProcessSpec(name, [PY, "-u", "-c", code], child_env({}), log_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


SLEEPER = "import time\nprint('ready', flush=True)\nwhile True: time.sleep(0.1)"
STUBBORN = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\nwhile True: time.sleep(0.1)"
)


def _wait_for(text: str, buffer: io.StringIO, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in buffer.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in buffer.getvalue(), buffer.getvalue()


def test_child_output_is_echoed_behind_a_name_prefix() -> None:
    console, buffer = _console()
    with Stack([_spec("api", "print('hello'); print('world')")], console) as stack:
        deadline = time.monotonic() + 20
        while stack.dead() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "[api] hello\n[api] world\n" in buffer.getvalue()


def test_output_goes_to_the_log_file_when_one_is_given(tmp_path: Path) -> None:
    console, buffer = _console()
    log = tmp_path / "logs" / "worker.log"
    with Stack([_spec("worker", "print('to the file')", log)], console) as stack:
        deadline = time.monotonic() + 20
        while stack.dead() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert log.read_text() == "to the file\n"
    assert "to the file" not in buffer.getvalue()


def test_a_dying_child_stops_the_others_and_supervise_returns_1() -> None:
    console, buffer = _console()
    stack = Stack(
        [_spec("api", SLEEPER), _spec("worker", "import sys, time; time.sleep(1); sys.exit(3)")],
        console,
        stop_timeout_s=5,
    )
    stack.start()
    pids = stack.pids()

    assert stack.supervise(poll_s=0.05) == 1

    assert "worker exited with code 3" in buffer.getvalue()
    assert not _alive(pids["api"])


def test_sigterm_stops_every_child_and_supervise_returns_0() -> None:
    console, buffer = _console()
    stack = Stack([_spec("api", SLEEPER), _spec("scheduler", SLEEPER)], console, stop_timeout_s=5)
    stack.start()
    pids = stack.pids()
    _wait_for("[scheduler] ready", buffer)
    _wait_for("[api] ready", buffer)
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        assert stack.supervise(poll_s=0.05) == 0
    finally:
        timer.cancel()
    assert not any(_alive(pid) for pid in pids.values())
    assert signal.getsignal(signal.SIGTERM) is not None


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout() -> None:
    console, buffer = _console()
    stack = Stack([_spec("worker", STUBBORN)], console, stop_timeout_s=0.5)
    stack.start()
    _wait_for("[worker] ready", buffer)
    pid = stack.pids()["worker"]
    started = time.monotonic()
    stack.stop()
    assert time.monotonic() - started < 10
    assert not _alive(pid)
    assert "did not stop in time" in buffer.getvalue()


def test_child_env_drops_prefixed_names_and_applies_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_TEST_DROPPED", "x")
    env = child_env({"SWITCHBOARD_BROKER__URL": "redis://h"}, drop_prefixes=("SWITCHBOARD_",))
    assert "SWITCHBOARD_TEST_DROPPED" not in env
    assert env["SWITCHBOARD_BROKER__URL"] == "redis://h"
    assert env["PATH"] == os.environ["PATH"]


def test_a_restartable_child_that_dies_is_started_again_and_the_others_keep_running() -> None:
    console, buffer = _console()
    specs = [
        ProcessSpec("worker-1", [PY, "-u", "-c", SLEEPER], child_env({}), restart=True),
        _spec("api", SLEEPER),
    ]
    with Stack(specs, console) as stack:
        _wait_for("[worker-1] ready", buffer)
        first = stack.pids()
        os.kill(first["worker-1"], signal.SIGKILL)  # what the OOM killer does

        deadline = time.monotonic() + 20
        while stack.restarts()["worker-1"] == 0 and time.monotonic() < deadline:
            stack.revive()
            time.sleep(0.05)

        assert stack.restarts()["worker-1"] == 1
        assert stack.dead() is None
        assert stack.pids()["api"] == first["api"]
        assert stack.pids()["worker-1"] != first["worker-1"]
        assert _alive(stack.pids()["worker-1"])
    assert "worker-1 exited with code -9" in buffer.getvalue()
    assert "starting it again in 1 s; the others keep running" in buffer.getvalue()


def test_a_child_that_keeps_dying_at_once_waits_longer_each_time() -> None:
    console, buffer = _console()
    spec = ProcessSpec("worker-1", [PY, "-c", "raise SystemExit(3)"], child_env({}), restart=True)
    with Stack([spec], console) as stack:
        deadline = time.monotonic() + 20
        while stack.restarts()["worker-1"] < 2 and time.monotonic() < deadline:
            stack.revive()
            time.sleep(0.05)
        assert stack.dead() is None
    waits = [line for line in buffer.getvalue().splitlines() if "starting it again" in line]
    assert "in 1 s" in waits[0]
    assert "in 2 s" in waits[1]
