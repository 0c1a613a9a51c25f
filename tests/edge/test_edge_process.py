"""``python -m infra.edge``, the API process: it fails fast, and never alone.

The API serving requests through the edge and gunicorn together runs in
``tests/producers/test_gunicorn_config.py``, ``tests/test_json_logs.py`` and
``tests/e2e/test_slow_clients.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from infra.cli.launch import api_argv, gunicorn_argv
from infra.edge.process import PRIVATE_PREFIX, private_dir
from infra.sockets import free_port


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(SWITCHBOARD_DATA_DIR=str(tmp_path / "data"), SWITCHBOARD_LOG_FORMAT="json")
    return env


def test_a_port_in_use_stops_the_api_before_gunicorn_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = api_argv(host="127.0.0.1", port=port, workers=1, threads=1)

        done = subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True, timeout=30)

    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert [(line["event"], line["port"]) for line in lines] == [("cannot listen", port)]
    assert "gunicorn" not in done.stdout + done.stderr


def test_gunicorn_listens_only_where_the_edge_says_and_reads_its_proxy_line() -> None:
    argv = gunicorn_argv(bind="unix:/run/private/gunicorn.sock", workers=2, threads=4)

    assert argv[argv.index("--bind") + 1] == "unix:/run/private/gunicorn.sock"
    assert argv[argv.index("--proxy-protocol") + 1] == "v1"
    assert argv[-1] == "producers.wsgi:application()"


def test_a_killed_edges_socket_directory_is_removed_by_the_next_one(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])  # a pid that has surely ended
    dead.wait()
    left = tmp_path / f"{PRIVATE_PREFIX}{dead.pid}-abc123"
    left.mkdir()
    (left / "gunicorn.sock").touch()
    alive = tmp_path / f"{PRIVATE_PREFIX}{os.getpid()}-def456"
    alive.mkdir()
    other = tmp_path / "switchboard-api-notapid-x"
    other.mkdir()

    with private_dir(tmp_path) as mine:
        assert mine.name.startswith(f"{PRIVATE_PREFIX}{os.getpid()}-")
        assert oct(mine.stat().st_mode & 0o777) == "0o700"
        assert not left.exists()
        assert alive.exists()
        assert other.exists()
    assert not mine.exists()


def test_a_metrics_port_in_use_stops_the_api_with_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _env(tmp_path) | {"SWITCHBOARD_API__PROMETHEUS_PORT": str(taken.getsockname()[1])}
        argv = api_argv(host="127.0.0.1", port=free_port(), workers=1, threads=1)

        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    [refused] = [line for line in lines if line["event"] == "cannot serve the API's metrics"]
    assert "SWITCHBOARD_API__PROMETHEUS_PORT" in refused["hint"]
