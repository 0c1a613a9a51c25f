"""Measure the API while slow clients hold connections open, and what becomes of them.

A slow client (a slowloris, a phone on a bad network, a sender that died mid-request)
opens a connection, sends part of a request and stalls. A server that gives a thread to
each connection while its request arrives runs out of threads: gunicorn's gthread
worker did, with 8 such clients against 2 workers of 4 threads (FIELD-NOTES).

This opens ``clients`` connections to the API that stall, half of them in the request
head (the headers without their final blank line), half in the body (a ``POST`` whose
``Content-Length`` promises more than is sent). While they stall it times ``GET
/healthz`` and signed webhooks, each on a fresh connection; then it waits for the
stalled connections to be answered (a ``408``) or closed.

Run: ``.venv/bin/python -m benchmarks.slow_clients [--clients 64] [--probes 20]``
(the whole stack on its own Valkey, the API as ``switchboard api`` runs it).
``tests/e2e/test_slow_clients.py`` runs the same attack with assertions.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from benchmarks.stack import SECRET, local_stack, webhook
from infra.demo.signing import SIGNATURE_HEADER, sign

STALLED_HEAD = b"GET /healthz HTTP/1.1\r\nHost: api\r\nUser-Agent: slow-client\r\n"
"""A request head without the blank line that ends it."""

STALLED_BODY = (
    b"POST /api/webhooks/elevenlabs/call-ended HTTP/1.1\r\nHost: api\r\n"
    b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
    b'{"type": "post_call_transcription", '
)
"""A complete head whose body stops after 36 of the 4096 bytes it announces."""

PROBE_TIMEOUT_S = 5.0
"""A probe without an answer in this long counts as failed."""


@dataclass
class Timings:
    """Answer times of one kind of request, and how many got no answer in time."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0

    def summary(self) -> str:
        """``n answered, p50 …, max …, k failed`` in milliseconds."""
        if not self.latencies_s:
            return f"none answered, {self.failures} failed"
        ms = sorted(1000 * s for s in self.latencies_s)
        return (
            f"{len(ms)} answered {dict(self.statuses)}, p50 {statistics.median(ms):.1f} ms, "
            f"max {ms[-1]:.1f} ms, {self.failures} failed"
        )


@dataclass
class Outcomes:
    """What the stalled connections got: ``408``, ``closed`` or ``open`` (at the deadline)."""

    kinds: Counter[str] = field(default_factory=Counter)
    ended_after_s: list[float] = field(default_factory=list)
    first_answers: list[bytes] = field(default_factory=list)


@contextmanager
def stalled_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    """Open ``count`` connections to 127.0.0.1:``port`` that stall; close them on the way out.

    Even ones stall in the request head, odd ones in the body.
    """
    sockets: list[socket.socket] = []
    try:
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sockets.append(sock)
            sock.sendall(STALLED_HEAD if n % 2 == 0 else STALLED_BODY)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def wait_outcomes(sockets: list[socket.socket], since: float, timeout_s: float) -> Outcomes:
    """Wait up to ``timeout_s`` for each connection to be answered or closed."""
    outcomes = Outcomes()
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ, sock)
        deadline = time.monotonic() + timeout_s
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                sock = key.data
                selector.unregister(sock)
                outcomes.ended_after_s.append(time.monotonic() - since)
                answer = _read_to_end(sock)
                outcomes.first_answers.append(answer)
                outcomes.kinds[_kind(answer)] += 1
        if selector.get_map():
            outcomes.kinds["open"] += len(selector.get_map())
    return outcomes


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    sock.settimeout(2)
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass  # reset or no close within 2 s: what was read is the answer
    return b"".join(chunks)


def _kind(answer: bytes) -> str:
    if not answer:
        return "closed"
    status_line = answer.split(b"\r\n", 1)[0].split()
    return status_line[1].decode() if len(status_line) > 1 else "garbled"


def time_calls(call: Callable[[], int], count: int, pause_s: float = 0.05) -> Timings:
    """Time ``count`` calls of ``call`` (which returns an HTTP status); errors are failures."""
    timings = Timings()
    for _ in range(count):
        started = time.monotonic()
        try:
            status = call()
        except httpx.HTTPError:
            timings.failures += 1
        else:
            timings.latencies_s.append(time.monotonic() - started)
            timings.statuses[status] += 1
        time.sleep(pause_s)
    return timings


def signed_webhook_call(
    url: str, secret: str, body: Callable[[str], bytes], timeout_s: float = PROBE_TIMEOUT_S
) -> Callable[[], int]:
    """A call posting a new signed webhook each time, on a fresh connection."""
    sent = Counter[str]()

    def call() -> int:
        sent["n"] += 1
        payload = body(f"slow_clients_{time.time_ns()}_{sent['n']}")
        headers = {SIGNATURE_HEADER: sign(secret, payload), "Content-Type": "application/json"}
        return httpx.post(
            f"{url}/api/webhooks/elevenlabs/call-ended",
            content=payload,
            headers=headers,
            timeout=timeout_s,
        ).status_code

    return call


def healthz_call(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Callable[[], int]:
    """A call of ``GET /healthz`` on a fresh connection."""
    return lambda: httpx.get(f"{url}/healthz", timeout=timeout_s).status_code


def main() -> None:
    """Attack the local stack's API with slow clients and print what was measured."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--wait", type=float, default=60.0, help="for the stalled to end")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as workdir, local_stack(Path(workdir), console) as local:
        port = int(local.url.rsplit(":", 1)[1])
        healthz, hook = healthz_call(local.url), signed_webhook_call(local.url, SECRET, webhook)
        console.print(f"idle: /healthz {time_calls(healthz, args.probes).summary()}")
        console.print(f"idle: webhook {time_calls(hook, args.probes).summary()}")
        with stalled_clients(port, args.clients) as sockets:
            since = time.monotonic()
            time.sleep(0.5)
            for name, call in (("/healthz", healthz), ("webhook", hook)):
                timings = time_calls(call, args.probes)
                console.print(f"{args.clients} stalled: {name} {timings.summary()}")
            outcomes = wait_outcomes(sockets, since, args.wait)
        ended = sorted(outcomes.ended_after_s)
        console.print(
            f"stalled clients: {dict(outcomes.kinds)}"
            + (f", ended after {ended[0]:.1f} to {ended[-1]:.1f} s" if ended else "")
        )


if __name__ == "__main__":
    main()
