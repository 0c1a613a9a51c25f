"""What the edge answers itself, before gunicorn sees anything (``infra.edge``).

Each refusal is a problem+json document that closes the connection, and nothing of the
request reaches the stand-in gunicorn behind the edge.
"""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from infra.metrics.edge import EdgeMetrics
from tests.edge.support import (
    IO_TIMEOUT_S,
    LIMITS,
    Edge,
    assert_problem,
    closed_by_peer,
    read_answer,
    running_edge,
)


@pytest.mark.parametrize(
    "header_line",
    [b"this line has no colon", b"Bad Name: value", b"X-Ctl: a\x00b"],
    ids=["no-colon", "space-in-name", "nul-in-value"],
)
def test_a_malformed_header_line_is_a_400(edge: Edge, header_line: bytes) -> None:
    answer = edge.exchange(b"GET /healthz HTTP/1.1\r\nHost: api\r\n" + header_line + b"\r\n\r\n")

    assert_problem(answer, 400, "Bad Request", instance=None)
    assert edge.upstream.received == []


def test_a_body_framed_twice_is_a_400(edge: Edge) -> None:
    answer = edge.exchange(
        b"POST /hook HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )

    assert_problem(answer, 400, "Bad Request", instance="/hook")


def test_a_transfer_coding_other_than_chunked_is_a_501(edge: Edge) -> None:
    answer = edge.exchange(b"POST /hook HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip\r\n\r\n")

    assert_problem(answer, 501, "Not Implemented", instance=None)


def test_an_http_version_other_than_1_0_and_1_1_is_a_505(edge: Edge) -> None:
    answer = edge.exchange(b"GET /healthz HTTP/2.0\r\nHost: api\r\n\r\n")

    assert_problem(answer, 505, "HTTP Version Not Supported", instance="/healthz")


@pytest.mark.parametrize(
    ("end", "instance"),
    [(b"\r\n\r\n", "/healthz"), (b"", None)],
    ids=["whole", "still-arriving"],
)
def test_a_head_over_the_limit_is_a_431(edge: Edge, end: bytes, instance: str | None) -> None:
    filler = b"X-Filler: " + b"x" * LIMITS.max_header_bytes

    answer = edge.exchange(b"GET /healthz?probe=1 HTTP/1.1\r\nHost: api\r\n" + filler + end)

    # Only a head that arrived whole was parsed: then its path is known.
    assert_problem(answer, 431, "Request Header Fields Too Large", instance=instance)


@pytest.mark.parametrize(
    "end", [b" HTTP/1.1\r\nHost: api\r\n\r\n", b""], ids=["whole", "still-arriving"]
)
def test_a_request_line_over_the_limit_is_a_414(edge: Edge, end: bytes) -> None:
    answer = edge.exchange(b"GET /" + b"a" * LIMITS.max_header_bytes + end)

    assert_problem(answer, 414, "URI Too Long", instance=None)


def test_an_announced_body_over_the_limit_is_a_413_without_100_continue(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(
            b"POST /hook?token=secret HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % (LIMITS.max_body_bytes + 1)
        )
        answer = read_answer(sock)

    assert_problem(answer, 413, "Content Too Large", instance="/hook")
    assert str(LIMITS.max_body_bytes) in answer.json()["detail"]


def test_a_chunked_body_growing_over_the_limit_is_a_413(edge: Edge) -> None:
    chunk = b"x" * 4096
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17))

    answer = edge.exchange(
        b"POST /hook HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    )

    assert_problem(answer, 413, "Content Too Large", instance="/hook")
    assert edge.upstream.received == []


def test_a_head_that_stalls_is_a_408_after_the_header_timeout(edge: Edge) -> None:
    with edge.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n")
        answer = read_answer(sock)
        waited = time.monotonic() - started

        assert closed_by_peer(sock)
    assert_problem(answer, 408, "Request Timeout", instance=None)
    assert LIMITS.header_timeout_s * 0.9 < waited < IO_TIMEOUT_S


def test_a_head_sent_a_byte_at_a_time_is_still_a_408_after_the_header_timeout(
    edge: Edge,
) -> None:
    with edge.connect() as sock:
        started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Slow: yes\r\n":
            sock.sendall(bytes([byte]))
            time.sleep(0.05)
            if time.monotonic() - started > LIMITS.header_timeout_s:
                break
        answer = read_answer(sock)

    assert_problem(answer, 408, "Request Timeout", instance=None)
    assert time.monotonic() - started < LIMITS.header_timeout_s + 1


def test_a_body_that_stalls_is_a_408_after_the_body_timeout(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(b"POST /hook HTTP/1.1\r\nHost: api\r\nContent-Length: 100\r\n\r\npart")
        started = time.monotonic()
        answer = read_answer(sock)
        waited = time.monotonic() - started

    assert_problem(answer, 408, "Request Timeout", instance="/hook")
    assert LIMITS.body_timeout_s * 0.9 < waited < IO_TIMEOUT_S
    assert edge.upstream.received == []


def test_a_connection_that_sends_nothing_is_closed_quietly(edge: Edge) -> None:
    with edge.connect() as sock:
        started = time.monotonic()
        assert sock.recv(65536) == b""

    assert LIMITS.header_timeout_s * 0.9 < time.monotonic() - started < IO_TIMEOUT_S


def test_an_idle_kept_alive_connection_is_closed_quietly_after_keepalive() -> None:
    with running_edge(keepalive_s=0.3) as edge, edge.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        assert read_answer(sock).status == 200
        started = time.monotonic()

        assert sock.recv(65536) == b""
        assert time.monotonic() - started < LIMITS.header_timeout_s


def test_connections_over_the_limit_are_a_503_to_retry() -> None:
    with running_edge(max_connections=2) as edge, edge.connect(), edge.connect():
        time.sleep(0.1)  # both accepted
        answer = edge.exchange(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")

    assert_problem(answer, 503, "Service Unavailable", instance=None)
    assert answer.header(b"retry-after") == b"1"


def test_refusals_are_counted_by_status_and_connections_while_held() -> None:
    registry = CollectorRegistry()
    metrics = EdgeMetrics(registry)
    with running_edge(max_connections=1, metrics=metrics) as edge:
        with edge.connect():
            time.sleep(0.1)  # accepted: it holds the only connection
            held = registry.get_sample_value("switchboard_edge_connections")
            busy = edge.exchange(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        deadline = time.monotonic() + IO_TIMEOUT_S
        while registry.get_sample_value("switchboard_edge_connections") and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        large = edge.exchange(
            b"POST /hook HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n"
            % (LIMITS.max_body_bytes + 1)
        )

    def refused(status: str) -> float | None:
        return registry.get_sample_value(
            "switchboard_edge_refused_requests_total", {"status": status}
        )

    assert (busy.status, large.status) == (503, 413)
    assert held == 1
    assert (refused("503"), refused("413")) == (1, 1)
    assert registry.get_sample_value("switchboard_edge_connections") == 0


def test_a_refusal_is_one_access_line_like_gunicorns(edge: Edge) -> None:
    with capture_logs() as logs:
        edge.exchange(
            b"POST /hook?token=secret HTTP/1.1\r\nHost: api\r\nUser-Agent: probe/1\r\n"
            b"Content-Length: %d\r\n\r\n" % (LIMITS.max_body_bytes + 1)
        )
        deadline = time.monotonic() + IO_TIMEOUT_S
        while not logs and time.monotonic() < deadline:
            time.sleep(0.01)  # the edge's thread logs once the answer is out

    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert {k: line[k] for k in ("method", "path", "status", "remote_addr", "user_agent")} == {
        "method": "POST",
        "path": "/hook",
        "status": 413,
        "remote_addr": "127.0.0.1",
        "user_agent": "probe/1",
    }
    assert line["bytes"] > 0
    assert line["duration_ms"] >= 0
