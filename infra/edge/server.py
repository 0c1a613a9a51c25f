"""The edge's connections: one coroutine each, at most ``max_connections``, a graceful stop.

A connection loops: wait for a request to begin (``keepalive_s`` between requests;
on a new connection its head must be whole ``header_timeout_s`` after it opened), read
it whole (``infra.edge.requests``), forward it and relay the answer
(``infra.edge.upstream``), and go on while both sides keep the connection alive. A
refusal is answered, then the connection closes after a short linger (its write side
shut, what the client still sends read and dropped for up to ``LINGER_S``), so that the
client reads the answer instead of a reset.

``stop`` stops accepting, closes the idle connections, lets requests in progress finish
for a grace period (their answers say ``Connection: close``), then drops what is left.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import h11

from infra.edge.limits import READ_CHUNK_BYTES, RESPONSE_BUFFER_BYTES, EdgeLimits
from infra.edge.problems import Refusal
from infra.edge.requests import read_request, wait_for_request
from infra.edge.upstream import AnswerCut, Peer, forward
from infra.logs import get_logger
from infra.metrics.edge import EdgeMetrics

LINGER_S = 2.0
"""How long a refused connection's remaining input is read and dropped before it closes."""

BACKLOG = 2048
"""Connections the kernel queues before the edge accepts them (gunicorn's default)."""

_log = get_logger(__name__)


class EdgeServer:
    """Accepts client connections and serves each as a coroutine.

    Args:
        limits: Time and size limits.
        upstream: gunicorn's unix socket.
        metrics: Where refusals and open connections are counted.
    """

    def __init__(
        self, limits: EdgeLimits, upstream: Path, metrics: EdgeMetrics | None = None
    ) -> None:
        self._limits = limits
        self._upstream = upstream
        self._metrics = metrics or EdgeMetrics()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.StreamWriter] = set()
        self._stopping = False

    async def start(self, host: str, port: int) -> list[str]:
        """Listen on ``host:port``; the addresses listened on.

        Raises:
            OSError: The address cannot be bound (in use, not local, no permission).
        """
        self._server = await asyncio.start_server(
            self._accept, host, port, reuse_address=True, backlog=BACKLOG
        )
        return [_address(sock.getsockname()) for sock in self._server.sockets]

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, close idle connections, give the others ``grace_s``, drop the rest."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._idle):
            writer.close()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(
            client=writer.get_extra_info("peername")[:2],
            local=writer.get_extra_info("sockname")[:2],
        )
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("connections are served as asyncio tasks")
        try:
            if self._stopping or len(self._connections) >= self._limits.max_connections:
                await self._refuse(_busy(self._limits), reader, writer, peer)
                return
            self._connections.add(task)
            self._metrics.connections.set(len(self._connections))
            await self._serve(reader, writer, peer)
        except Refusal as refusal:
            await self._refuse(refusal, reader, writer, peer)
        except (AnswerCut, ConnectionError) as error:
            _log.debug("connection dropped", remote_addr=peer.client[0], reason=str(error))
        finally:
            self._connections.discard(task)
            self._metrics.connections.set(len(self._connections))
            await _close(writer, LINGER_S)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        writer.transport.set_write_buffer_limits(high=RESPONSE_BUFFER_BYTES)
        limits = self._limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        loop = asyncio.get_running_loop()
        head_deadline: float | None = loop.time() + limits.header_timeout_s
        idle_s = limits.header_timeout_s
        while await self._wait_idle(conn, reader, writer, idle_s):
            if head_deadline is None:
                head_deadline = loop.time() + limits.header_timeout_s
            request = await read_request(conn, reader, writer, limits, head_deadline=head_deadline)
            if request is None:
                return
            await forward(
                request,
                peer,
                conn,
                writer,
                upstream=self._upstream,
                limits=limits,
                close=self._stopping,
            )
            if (conn.our_state, conn.their_state) != (h11.DONE, h11.DONE):
                return
            conn.start_next_cycle()
            head_deadline, idle_s = None, limits.keepalive_s

    async def _wait_idle(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        idle_s: float,
    ) -> bool:
        """Wait for the next request to begin; False to close (idle too long, or stopping)."""
        if self._stopping:
            return False
        self._idle.add(writer)
        try:
            return await wait_for_request(conn, reader, idle_s)
        finally:
            self._idle.discard(writer)

    async def _refuse(
        self,
        refusal: Refusal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
    ) -> None:
        self._metrics.refused.labels(status=str(refusal.status)).inc()
        answer = refusal.response()
        try:
            writer.write(answer)
            async with asyncio.timeout(LINGER_S):
                await writer.drain()
        except (TimeoutError, ConnectionError):
            refusal.log(peer.client[0], 0)
            return  # the client is gone or does not read: nothing more to do for it
        refusal.log(peer.client[0], len(answer))
        try:
            await _linger(reader, writer)
        except (TimeoutError, ConnectionError):
            return  # lingered long enough


def _busy(limits: EdgeLimits) -> Refusal:
    return Refusal(
        503,
        f"the API holds its {limits.max_connections} connections: retry shortly",
        headers=(("Retry-After", "1"),),
    )


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Shut the write side, then drop what the client still sends for up to ``LINGER_S``."""
    if writer.can_write_eof():
        writer.write_eof()
    async with asyncio.timeout(LINGER_S):
        while await reader.read(READ_CHUNK_BYTES):
            pass


async def _close(writer: asyncio.StreamWriter, timeout_s: float) -> None:
    """Close, waiting at most ``timeout_s`` for unsent bytes to go, then abort."""
    writer.close()
    try:
        async with asyncio.timeout(timeout_s):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()


def _address(sockname: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
