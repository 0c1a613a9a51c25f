"""The edge on a loop thread of its own, a stand-in gunicorn behind it, a raw client.

``UpstreamStandIn`` listens on a unix socket like gunicorn behind the edge: it reads the
PROXY line and the request with h11, records them, and answers as the test says
(``behaviour``). The tests talk to the edge over real sockets on 127.0.0.1, byte by byte
where the bytes are the point.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import h11

from infra.edge.limits import EdgeLimits
from infra.edge.server import EdgeServer
from infra.metrics.edge import EdgeMetrics
from tests.producers.conformance import problem_violations

T = TypeVar("T")

LIMITS = EdgeLimits(
    max_header_bytes=16 * 1024,
    max_body_bytes=64 * 1024,
    header_timeout_s=1.0,
    body_timeout_s=1.0,
    keepalive_s=1.0,
    answer_timeout_s=1.0,
    max_connections=16,
)
"""Small limits and short timeouts, so each test waits a second at most."""

IO_TIMEOUT_S = 5.0
"""How long a test's socket waits for the edge: past every timeout of ``LIMITS``."""

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'
"""gunicorn's answer unless a test says otherwise."""

Behaviour = Literal["answer", "silent", "hang_up", "answer_unread"]


@dataclass(frozen=True)
class Received:
    """One request as the stand-in gunicorn got it."""

    proxy_line: bytes
    request: h11.Request
    body: bytes

    def headers(self, name: bytes) -> list[bytes]:
        """Every value of header ``name`` (lower case)."""
        return [v for n, v in self.request.headers if n == name]


@dataclass
class UpstreamStandIn:
    """A gunicorn stand-in on a unix socket.

    Attributes:
        behaviour: ``answer`` with ``answer``; stay ``silent``; ``hang_up`` without an
            answer; ``answer_unread``: answer after the head, without reading the body,
            and close (as gunicorn does with a request it refuses).
        answer: The raw answer.
        received: What arrived, in order.
        answered: Set once an answer was written whole (the socket buffers took it).
    """

    path: Path
    behaviour: Behaviour = "answer"
    answer: bytes = OK
    received: list[Received] = field(default_factory=list)
    answered: threading.Event = field(default_factory=threading.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection as told."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            if self.behaviour == "answer_unread":
                await reader.readuntil(b"\r\n\r\n")
                await self._answer(writer)
                return
            proxy_line = await reader.readline()
            request, body = await _read_request(reader)
            self.received.append(Received(proxy_line, request, body))
            if self.behaviour == "silent":
                await asyncio.sleep(3600)
            if self.behaviour == "answer":
                await self._answer(writer)
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> None:
        writer.write(self.answer)
        await writer.drain()
        self.answered.set()


async def _read_request(reader: asyncio.StreamReader) -> tuple[h11.Request, bytes]:
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return request, body
        else:
            raise AssertionError(f"unexpected {event!r}")


class LoopThread:
    """An asyncio loop on a daemon thread; ``run`` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = IO_TIMEOUT_S) -> T:
        """Run ``coroutine`` on the loop and return its result."""
        return self.submit(coroutine).result(timeout_s)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coroutine`` on the loop; its future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(IO_TIMEOUT_S)
        self.loop.close()


@dataclass
class Edge:
    """The running edge, its port and the stand-in behind it."""

    server: EdgeServer
    port: int
    upstream: UpstreamStandIn
    loop: LoopThread

    def connect(self) -> socket.socket:
        """A new client connection."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT_S)

    def exchange(self, request: bytes) -> Answer:
        """Send ``request`` on a new connection; its answer."""
        with self.connect() as sock:
            sock.sendall(request)
            return read_answer(sock)


@contextmanager
def running_edge(*, metrics: EdgeMetrics | None = None, **limits: Any) -> Iterator[Edge]:
    """The edge on 127.0.0.1 with ``LIMITS`` (``limits`` overrides some), a stand-in behind."""
    # A short directory: a unix socket's path is limited to 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="edge-"))
    upstream = UpstreamStandIn(directory / "gunicorn.sock")
    loop = LoopThread()
    server = EdgeServer(replace(LIMITS, **limits), upstream.path, metrics)

    async def start() -> tuple[asyncio.Server, list[str]]:
        standin = await asyncio.start_unix_server(upstream.handle, str(upstream.path))
        return standin, await server.start("127.0.0.1", 0)

    async def stop(standin: asyncio.Server) -> None:
        await server.stop(0.5)
        standin.close()
        for task in upstream.tasks:
            task.cancel()
        await asyncio.gather(*upstream.tasks, return_exceptions=True)

    standin, addresses = loop.run(start())
    try:
        yield Edge(server, int(addresses[0].rsplit(":", 1)[1]), upstream, loop)
    finally:
        loop.run(stop(standin))
        loop.close()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read off a socket."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name.lower())


def read_answer(sock: socket.socket, *, head_request: bool = False) -> Answer:
    """One answer: its head, then ``Content-Length`` bytes (or all until the close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if head_request:
        return Answer(int(status_line.split()[1]), headers, b"")
    if b"content-length" in headers:
        while len(body) < int(headers[b"content-length"]):
            body += sock.recv(65536)
    else:
        while chunk := sock.recv(65536):
            body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def assert_problem(answer: Answer, status: int, title: str, *, instance: str | None) -> None:
    """Assert a refusal of the edge: a problem document the API's ``Problem`` schema
    accepts, closing the connection, naming ``instance`` (None: none, the path unknown)."""
    assert answer.status == status
    assert answer.header(b"content-type") == b"application/problem+json"
    assert answer.header(b"connection") == b"close"
    document = answer.json()
    assert (document["status"], document["title"], document["type"]) == (
        status,
        title,
        "about:blank",
    )
    assert document["detail"]
    assert document.get("instance") == instance
    assert not problem_violations(document), document


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other side closed ``sock`` (EOF within ``IO_TIMEOUT_S``)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
