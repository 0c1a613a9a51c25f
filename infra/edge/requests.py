"""Reading one client request whole, head and body, within the edge's limits.

h11 parses; this module feeds it from the socket against deadlines and turns what it
refuses into ``Refusal`` answers:

- nothing arrives while a connection is idle (``keepalive_s``, or ``header_timeout_s``
  on a new connection): the connection closes without an answer;
- the head is not whole by ``header_timeout_s`` after it began: 408;
- the head outgrows ``max_header_bytes``: 431, or 414 when the request line alone does;
- a malformed head: 400; a transfer coding other than chunked: 501; an HTTP version
  other than 1.0 and 1.1: 505; both ``Content-Length`` and ``Transfer-Encoding``: 400;
- the body is announced or grows past ``max_body_bytes``: 413 (before any of it is read
  when announced); it is not whole ``body_timeout_s`` after the head: 408.

A client that sent ``Expect: 100-continue`` gets its ``100 Continue`` once the head is
accepted. A client that goes away mid-request gets nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11

from infra.edge.limits import READ_CHUNK_BYTES, EdgeLimits
from infra.edge.problems import Refusal, RequestLine

SUPPORTED_VERSIONS = (b"1.0", b"1.1")


@dataclass(frozen=True)
class BufferedRequest:
    """A request read whole.

    Attributes:
        event: h11's request head (``headers.raw_items()`` keeps the client's casing).
        body: The body, de-chunked; None when the request had no body framing.
        line: Its method, path and user agent, for access lines.
    """

    event: h11.Request
    body: bytes | None
    line: RequestLine


class _Feed:
    """Feeds ``conn`` from ``reader``.

    Tells whether the request line is whole (414 or 431) and whether the client closed.
    """

    def __init__(self, conn: h11.Connection, reader: asyncio.StreamReader) -> None:
        self.conn = conn
        self.reader = reader
        self.line_whole = b"\n" in conn.trailing_data[0]
        self.fed = len(conn.trailing_data[0])
        self.eof = False

    async def more(self, deadline: float) -> bool:
        """Read once into h11 before ``deadline`` (loop time); False when it passed."""
        try:
            async with asyncio.timeout_at(deadline):
                data = await self.reader.read(READ_CHUNK_BYTES)
        except TimeoutError:
            return False
        self.line_whole = self.line_whole or b"\n" in data
        self.fed += len(data)
        self.eof = not data
        self.conn.receive_data(data)
        return True


async def wait_for_request(
    conn: h11.Connection, reader: asyncio.StreamReader, idle_s: float
) -> bool:
    """Wait up to ``idle_s`` for the first byte of the next request; False: close quietly."""
    if conn.trailing_data[0]:
        return True
    try:
        async with asyncio.timeout(idle_s):
            data = await reader.read(READ_CHUNK_BYTES)
    except TimeoutError:
        return False
    conn.receive_data(data)
    return bool(data)


async def read_request(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    limits: EdgeLimits,
    *,
    head_deadline: float,
) -> BufferedRequest | None:
    """The next request on ``conn``, read whole; None when the client went away.

    Args:
        conn: The connection's h11 state, in a new cycle.
        reader: The client's stream.
        writer: The client's stream, for ``100 Continue``.
        limits: The edge's limits.
        head_deadline: Loop time by which the head must be whole.

    Raises:
        Refusal: The request is refused (see the module docstring).
    """
    feed = _Feed(conn, reader)
    begun = RequestLine()
    event = await _head(feed, limits, head_deadline, begun)
    if event is None:
        return None
    line = RequestLine(
        method=event.method.decode("ascii", "replace"),
        path=event.target.split(b"?", 1)[0].decode("latin-1"),
        user_agent=_header(event, b"user-agent"),
        started=begun.started,
    )
    _check_size(event, feed, limits, begun, line)
    _check(event, line, limits)
    if conn.they_are_waiting_for_100_continue:
        writer.write(
            conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
            or b""
        )
    body = await _body(feed, line, limits, asyncio.get_running_loop().time())
    if body is None:
        return None
    framed = any(name in (b"content-length", b"transfer-encoding") for name, _ in event.headers)
    return BufferedRequest(event, body if framed else None, line)


async def _head(
    feed: _Feed, limits: EdgeLimits, deadline: float, begun: RequestLine
) -> h11.Request | None:
    while True:
        try:
            event = feed.conn.next_event()
        except h11.RemoteProtocolError as error:
            if feed.eof:
                return None
            raise _malformed(error, feed, begun) from None
        if isinstance(event, h11.Request):
            return event
        if event is not h11.NEED_DATA:
            return None  # ConnectionClosed: the client went away between requests
        if not await feed.more(deadline):
            raise Refusal(
                408,
                f"the request head did not arrive whole within {limits.header_timeout_s:g} s",
                request=begun,
            )


async def _body(feed: _Feed, line: RequestLine, limits: EdgeLimits, now: float) -> bytes | None:
    deadline = now + limits.body_timeout_s
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            event = feed.conn.next_event()
        except h11.RemoteProtocolError as error:
            if feed.eof:
                return None
            raise Refusal(400, f"malformed body: {error}", request=line) from None
        if isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limits.max_body_bytes:
                raise _too_large(limits, line)
            chunks.append(bytes(event.data))
        elif event is h11.NEED_DATA:
            if not await feed.more(deadline):
                raise Refusal(
                    408,
                    f"the body did not arrive whole within {limits.body_timeout_s:g} s",
                    request=line,
                )
        else:
            return None  # ConnectionClosed


def _check(event: h11.Request, line: RequestLine, limits: EdgeLimits) -> None:
    if event.http_version not in SUPPORTED_VERSIONS:
        raise Refusal(505, "only HTTP/1.0 and HTTP/1.1 are served", request=line)
    names = {name for name, _ in event.headers}
    if {b"content-length", b"transfer-encoding"} <= names:
        raise Refusal(
            400, "a request may not carry both Content-Length and Transfer-Encoding", request=line
        )
    length = _header(event, b"content-length")
    if length is not None and int(length) > limits.max_body_bytes:
        raise _too_large(limits, line)


def _check_size(
    event: h11.Request, feed: _Feed, limits: EdgeLimits, begun: RequestLine, line: RequestLine
) -> None:
    """Refuse a head over the limit that arrived whole at once.

    h11's ``max_incomplete_event_size`` bounds only a head still incomplete. A 431 names
    the request's path; a 414 does not: the path is what is too long to echo or log.
    """
    head_bytes = feed.fed - len(feed.conn.trailing_data[0])
    if head_bytes <= limits.max_header_bytes:
        return
    if len(event.method) + len(event.target) + len(b"  HTTP/1.1\r\n") > limits.max_header_bytes:
        raise Refusal(414, "the request line is too long", request=begun)
    raise Refusal(431, "the request head is too large", request=line)


def _too_large(limits: EdgeLimits, line: RequestLine) -> Refusal:
    return Refusal(413, f"the body must be at most {limits.max_body_bytes} bytes", request=line)


def _malformed(error: h11.RemoteProtocolError, feed: _Feed, begun: RequestLine) -> Refusal:
    status = error.error_status_hint
    if status == 431 and not feed.line_whole:
        return Refusal(414, "the request line is too long", request=begun)
    if status == 431:
        return Refusal(431, "the request head is too large", request=begun)
    if status == 501:
        return Refusal(501, "only the chunked transfer coding is supported", request=begun)
    return Refusal(400, f"malformed request: {error}", request=begun)


def _header(event: h11.Request, name: bytes) -> str | None:
    for key, value in event.headers:
        if key == name:
            return value.decode("latin-1")
    return None
