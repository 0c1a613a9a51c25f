"""Forwarding a request read whole to gunicorn, and relaying its answer to the client.

Each request gets a connection of its own to gunicorn's unix socket, opened once the
request is whole, which starts with a PROXY protocol v1 line naming the client: gunicorn
then sets ``REMOTE_ADDR`` to the client's address, for the app and the access log.
(gthread reads the PROXY line on a connection's first request only and forgets it on
the next ones, so connections are not reused; a unix connect costs microseconds.)

The request goes as HTTP/1.1 with its ``Content-Length`` (a chunked body is de-chunked),
without the hop-by-hop headers (``Connection`` and those it names, ``Keep-Alive``,
``Transfer-Encoding``, ``TE``, ``Trailer``, ``Upgrade``, ``Expect``), with the client's
address appended to ``X-Forwarded-For``, and with ``X-Forwarded-Proto: http`` unless a
proxy in front already set it. The answer streams back as it comes, through a buffer of
``RESPONSE_BUFFER_BYTES`` on each side, so gunicorn's thread is free once an answer of
up to that size is out, however slowly the client reads. gunicorn's ``Connection:
close`` (it answers so what it refused itself, 400/414/431) closes the client's
connection too.

gunicorn missing (starting, restarting): 503 with ``Retry-After``; no answer within
``answer_timeout_s``: 504; the connection lost before an answer: 502. Once the answer
has begun, a failure can only drop the client's connection (``AnswerCut``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import h11

from infra.edge.limits import RESPONSE_BUFFER_BYTES, EdgeLimits
from infra.edge.problems import Refusal, RequestLine
from infra.edge.requests import BufferedRequest

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
"""Headers about one connection (RFC 9110 §7.6.1), never forwarded; nor ``Expect``: the
edge has answered ``100 Continue`` itself."""

RETRY_AFTER_S = 1


class AnswerCut(Exception):  # noqa: N818 (an outcome: the client's connection must drop)
    """gunicorn's answer broke off after it began: the client's connection is dropped."""


@dataclass(frozen=True)
class Peer:
    """The two ends of a client's connection to the edge: ``(host, port)`` each."""

    client: tuple[str, int]
    local: tuple[str, int]

    def proxy_line(self) -> bytes:
        """The PROXY protocol v1 line naming the client."""
        family = "TCP6" if ":" in self.client[0] else "TCP4"
        (source, source_port), (target, target_port) = self.client, self.local
        return f"PROXY {family} {source} {target} {source_port} {target_port}\r\n".encode()


async def forward(
    request: BufferedRequest,
    peer: Peer,
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    *,
    upstream: Path,
    limits: EdgeLimits,
    close: bool,
) -> None:
    """Send ``request`` to gunicorn and relay its answer on ``conn``.

    Args:
        request: The request, read whole.
        peer: The client's connection, for the PROXY line and ``X-Forwarded-For``.
        conn: The client connection's h11 state (the answer is sent through it).
        writer: The client's stream.
        upstream: gunicorn's unix socket.
        limits: The edge's limits.
        close: Answer with ``Connection: close`` (the edge is stopping).

    Raises:
        Refusal: 502, 503 or 504 before any of the answer was sent.
        AnswerCut: gunicorn's answer broke off, or the client did not read it in time.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, receiver = await asyncio.wait_for(
            loop.create_unix_connection(_Receiver, str(upstream)), limits.answer_timeout_s
        )
    except (OSError, TimeoutError):
        # No socket yet, or nobody accepting on it: gunicorn is booting or restarting.
        raise Refusal(
            503,
            "the API is starting or restarting: retry shortly",
            request=request.line,
            headers=(("Retry-After", str(RETRY_AFTER_S)),),
        ) from None
    try:
        client = h11.Connection(h11.CLIENT)
        transport.write(peer.proxy_line() + _serialize(client, request, peer))
        head = await _answer_head(client, receiver, request, limits)
        await _relay(client, receiver, head, conn, writer, limits, close=close, line=request.line)
    finally:
        transport.close()


def _serialize(client: h11.Connection, request: BufferedRequest, peer: Peer) -> bytes:
    event = request.event
    connection_named = {
        token.strip().lower()
        for name, value in event.headers
        if name == b"connection"
        for token in value.split(b",")
    }
    dropped = HOP_BY_HOP | connection_named | {b"content-length", b"x-forwarded-for"}
    headers = [(n, v) for n, v in event.headers.raw_items() if n.lower() not in dropped]
    names = {name.lower() for name, _ in headers}
    if b"host" not in names:
        host, port = peer.local
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        headers.append((b"Host", authority.encode()))
    forwarded = [v for n, v in event.headers if n == b"x-forwarded-for"]
    headers.append((b"X-Forwarded-For", b", ".join([*forwarded, peer.client[0].encode()])))
    if b"x-forwarded-proto" not in names:
        headers.append((b"X-Forwarded-Proto", b"http"))
    if request.body is not None:
        headers.append((b"Content-Length", str(len(request.body)).encode()))
    data = client.send(h11.Request(method=event.method, target=event.target, headers=headers))
    if request.body:
        data = (data or b"") + (client.send(h11.Data(data=request.body)) or b"")
    return (data or b"") + (client.send(h11.EndOfMessage()) or b"")


async def _answer_head(
    client: h11.Connection, receiver: _Receiver, request: BufferedRequest, limits: EdgeLimits
) -> h11.Response:
    try:
        while True:
            event = await _next_event(client, receiver, limits)
            if isinstance(event, h11.Response):
                return event
            # A 1xx from gunicorn (an early hint) is not relayed.
    except TimeoutError:
        raise Refusal(
            504, f"no answer within {limits.answer_timeout_s:g} s", request=request.line
        ) from None
    except (h11.RemoteProtocolError, ConnectionError):
        raise Refusal(
            502, "the API closed the connection without an answer", request=request.line
        ) from None


async def _relay(
    client: h11.Connection,
    receiver: _Receiver,
    head: h11.Response,
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    limits: EdgeLimits,
    *,
    close: bool,
    line: RequestLine,
) -> None:
    upstream_closes = any(
        name == b"connection" and b"close" in value.lower() for name, value in head.headers
    )
    headers = [(n, v) for n, v in head.headers.raw_items() if n.lower() not in HOP_BY_HOP]
    if close or upstream_closes:
        headers.append((b"Connection", b"close"))
    try:
        response = h11.Response(status_code=head.status_code, headers=headers, reason=head.reason)
        data = conn.send(response)
    except h11.LocalProtocolError as error:
        raise Refusal(502, f"the API's answer cannot be relayed: {error}", request=line) from None
    await _write(writer, data, limits)
    try:
        while not isinstance(
            event := await _next_event(client, receiver, limits), h11.EndOfMessage
        ):
            if isinstance(event, h11.Data):
                await _write(writer, conn.send(h11.Data(data=event.data)), limits)
    except (TimeoutError, h11.RemoteProtocolError, ConnectionError) as error:
        raise AnswerCut(f"the API's answer broke off: {error!r}") from None
    await _write(writer, conn.send(h11.EndOfMessage()), limits)


async def _next_event(client: h11.Connection, receiver: _Receiver, limits: EdgeLimits) -> h11.Event:
    while True:
        event = client.next_event()
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            raise ConnectionResetError("the API closed the connection")
        if isinstance(event, h11.Event):
            return event
        async with asyncio.timeout(limits.answer_timeout_s):
            client.receive_data(await receiver.receive())


async def _write(writer: asyncio.StreamWriter, data: bytes | None, limits: EdgeLimits) -> None:
    """Write to the client; wait (bounded) only while more than the buffer is unread."""
    if not data:
        return
    writer.write(data)
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            await writer.drain()
    except (TimeoutError, ConnectionError) as error:
        raise AnswerCut(f"the client did not read its answer: {error!r}") from None


class _Receiver(asyncio.Protocol):
    """gunicorn's side of one connection: bytes as they come, b"" at the end.

    Not a ``StreamReader``: one that saw the connection reset raises at once, dropping an
    answer already received (gunicorn answers some requests without reading their body,
    then closes, which resets a connection we are still writing that body to).
    Reading pauses while ``RESPONSE_BUFFER_BYTES`` wait unread.
    """

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._ended = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > RESPONSE_BUFFER_BYTES and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 (what was received still counts)
        self._ended = True
        self._wake()

    async def receive(self) -> bytes:
        """The next bytes from gunicorn, b"" once it closed."""
        while not self._chunks and not self._ended:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._chunks:
            return b""
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= RESPONSE_BUFFER_BYTES and self._transport:
            self._transport.resume_reading()
            self._paused = False
        return data

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
