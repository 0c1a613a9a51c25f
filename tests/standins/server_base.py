"""A threaded HTTP server on 127.0.0.1:0 that vendor stand-ins build on.

Each stand-in subclasses ``StandInServer`` and implements ``handle``. Tests script
failures with ``fail_next`` (a status, optional headers, or a delay longer than the
client's timeout) and read what the client sent in ``requests``. HTTP/1.0 replies
close every connection, so ``stop`` never waits on an idle keep-alive socket, and
delayed replies wake up at ``stop`` so no thread outlives the test.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What to answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw: bytes | None = None

    def payload(self) -> bytes:
        """The encoded body."""
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


@dataclass
class _Scripted:
    reply: Reply
    path_prefix: str
    times: int


class StandInServer:
    """Base of the stand-ins: start/stop, scripted failures, recorded requests."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripted: deque[_Scripted] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed replies, join every thread, close the socket."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        path_prefix: str = "",
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests under ``path_prefix`` with ``status``.

        ``delay_s`` holds the reply back (longer than the client's timeout to script
        a timeout); the default body is ``{"error": {"message": ...}}``.
        """
        reply = Reply(
            status=status,
            body=body if body is not None else {"error": {"message": f"scripted {status}"}},
            headers=headers or {},
            delay_s=delay_s,
        )
        with self._lock:
            self._scripted.append(_Scripted(reply, path_prefix, times))

    def handle(self, request: Request) -> Reply:
        """Answer one request (implemented by each stand-in)."""
        raise NotImplementedError

    def _next_scripted(self, path: str) -> Reply | None:
        with self._lock:
            for scripted in self._scripted:
                if path.startswith(scripted.path_prefix):
                    scripted.times -= 1
                    if scripted.times <= 0:
                        self._scripted.remove(scripted)
                    return scripted.reply
        return None

    def _dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        scripted = self._next_scripted(request.path)
        return scripted if scripted is not None else self.handle(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = standin._dispatch(request)
                if reply.delay_s and standin._stopping.wait(reply.delay_s):
                    return
                payload = reply.payload()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve  # noqa: N815 (http.server's naming)
            do_POST = _serve  # noqa: N815
            do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                """Silence per-request logging."""

        return Handler
