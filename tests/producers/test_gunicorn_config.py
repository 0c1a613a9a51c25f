from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from gunicorn.config import Config

import infra
from infra.cli.launch import api_argv
from infra.store.migrate import upgrade
from producers.gunicorn_logs import GunicornLogger
from tests.producers.api_support import PROBLEM_JSON
from tests.producers.conformance import problem_violations

CONFIG = Path(infra.__file__).parent / "deploy" / "gunicorn.conf.py"
START_TIMEOUT_S = 30.0
IO_TIMEOUT_S = 10.0
GUNICORN_REDIS_DB = 11


def load() -> tuple[Config, dict[str, Any]]:
    namespace = runpy.run_path(str(CONFIG))
    config = Config()
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    return config, namespace


def test_the_gunicorn_config_uses_threads_after_fork_and_logs_through_our_logging() -> None:
    config, _ = load()

    assert config.worker_class_str == "gthread"
    assert config.preload_app is False
    assert config.control_socket_disable is True
    assert config.logger_class is GunicornLogger
    assert config.accesslog == "-"
    assert 0 < config.graceful_timeout <= config.timeout


def test_child_exit_removes_only_the_dead_workers_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead = tmp_path / "gauge_livesum_4242.db"
    alive = tmp_path / "gauge_livesum_4343.db"
    counter = tmp_path / "counter_4242.db"
    for path in (dead, alive, counter):
        path.write_bytes(b"")
    _, namespace = load()

    namespace["child_exit"](None, SimpleNamespace(pid=4242))

    assert not dead.exists()
    assert alive.exists()
    assert counter.exists()


def test_child_exit_does_nothing_without_multiprocess_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    stray = tmp_path / "gauge_livesum_4242.db"
    stray.write_bytes(b"")
    _, namespace = load()

    namespace["child_exit"](None, SimpleNamespace(pid=4242))

    assert stray.exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RawAnswer:
    """An HTTP answer read off a socket, as bytes went over the wire."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(port: int, request: bytes) -> RawAnswer:
    """Send raw bytes to the API and read its answer until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as sock:
        sock.sendall(request)
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(status_line.split(" ")[1]), headers, body)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=IO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=IO_TIMEOUT_S)


@pytest.fixture(scope="module")
def gunicorn_api(tmp_path_factory: pytest.TempPathFactory, redis_server_url: str) -> Iterator[int]:
    """The real API as ``switchboard api`` runs it: the edge (``infra.edge``) and
    gunicorn with the packaged config behind it; yields its port.

    One process serves the module's tests (each boot takes seconds). It publishes
    nothing, so a database of the session's Valkey no other test uses is enough.
    """
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_DATABASE__URL=database_url,
        SWITCHBOARD_BROKER__URL=f"{redis_server_url.rstrip('/')}/{GUNICORN_REDIS_DB}",
        SWITCHBOARD_API__PROMETHEUS_PORT="0",
        SWITCHBOARD_WORKER__PROMETHEUS_PORT="0",
        SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT="0",
    )
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            api_argv(host="127.0.0.1", port=port, workers=1, threads=2),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"gunicorn did not answer in {START_TIMEOUT_S} s:\n{log_path.read_text()}"
                )
            time.sleep(0.1)
        yield port
    finally:
        stop(process)


@pytest.mark.e2e
@pytest.mark.redis
def test_gunicorn_answers_a_request_line_over_its_limit_with_a_414_problem(
    gunicorn_api: int,
) -> None:
    path = "/" + "a" * 5000

    answer = exchange(gunicorn_api, f"GET {path} HTTP/1.1\r\nHost: api\r\n\r\n".encode())

    assert answer.status == 414
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert int(answer.headers["content-length"]) == len(answer.body)
    document = answer.json()
    assert document["status"] == 414
    assert document["title"] == "URI Too Long"
    assert document["type"] == "about:blank"
    # gunicorn does not pass the request to its error writer: no instance, still a Problem.
    assert "instance" not in document
    assert not problem_violations(document)


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.parametrize(
    "header_line",
    [b"this line has no colon", b"Bad Name: value", b"X-Ctl: a\x00b"],
    ids=["no-colon", "space-in-name", "nul-in-value"],
)
def test_the_edge_answers_a_malformed_header_line_with_a_400_problem(
    gunicorn_api: int, header_line: bytes
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: api\r\n" + header_line + b"\r\n\r\n"

    answer = exchange(gunicorn_api, request)

    assert answer.status == 400
    assert answer.headers["content-type"] == PROBLEM_JSON
    document = answer.json()
    assert document["status"] == 400
    assert document["title"] == "Bad Request"
    assert not problem_violations(document)


@pytest.mark.e2e
@pytest.mark.redis
def test_gunicorn_answers_too_many_headers_with_a_431_problem(gunicorn_api: int) -> None:
    headers = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(101))
    request = b"GET /healthz HTTP/1.1\r\nHost: api\r\n" + headers + b"\r\n"

    answer = exchange(gunicorn_api, request)

    assert answer.status == 431
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["status"] == 431
    assert not problem_violations(answer.json())


@pytest.mark.e2e
@pytest.mark.redis
def test_the_app_behind_gunicorn_still_answers_well_formed_requests(gunicorn_api: int) -> None:
    answer = exchange(
        gunicorn_api, b"GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"
    )

    assert answer.status == 200
    assert answer.json() == {"status": "ok"}


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_an_uptime_checkers_head_is_answered_without_a_body(gunicorn_api: int, path: str) -> None:
    request = f"HEAD {path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n".encode()

    answer = exchange(gunicorn_api, request)

    assert answer.status in (200, 503)  # /readyz: whatever its probes say, never 405
    assert int(answer.headers["content-length"]) > 0  # the length GET's body would have
    assert answer.body == b""
