"""The edge forwards whole requests to gunicorn and relays the answers (``infra.edge``).

A stand-in gunicorn on a unix socket records what arrives; the client is a raw socket.
"""

from __future__ import annotations

import socket
import time

import pytest

from infra.edge.limits import RESPONSE_BUFFER_BYTES
from tests.edge.support import (
    IO_TIMEOUT_S,
    Edge,
    assert_problem,
    closed_by_peer,
    read_answer,
)


def test_a_request_reaches_gunicorn_whole_and_names_the_client(edge: Edge) -> None:
    with edge.connect() as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(
            b"POST /api/things?x=1 HTTP/1.1\r\nHost: api.example\r\nX-Trace: a\r\n"
            b"Connection: close, X-Trace\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
            b"Content-Length: 5\r\n\r\nhello"
        )
        answer = read_answer(sock)

    assert (answer.status, answer.json()) == (200, {"ok": True})
    [received] = edge.upstream.received
    assert received.proxy_line == (
        f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {edge.port}\r\n".encode()
    )
    assert (received.request.method, received.request.target) == (b"POST", b"/api/things?x=1")
    assert received.body == b"hello"
    assert received.headers(b"host") == [b"api.example"]
    assert received.headers(b"content-length") == [b"5"]
    assert received.headers(b"x-forwarded-for") == [b"127.0.0.1"]
    assert received.headers(b"x-forwarded-proto") == [b"http"]
    # Hop-by-hop headers, and those Connection names, stay with the client's connection.
    for name in (b"connection", b"keep-alive", b"te", b"x-trace"):
        assert received.headers(name) == [], name


def test_a_proxy_in_front_keeps_its_scheme_and_the_client_joins_the_forwarded_chain(
    edge: Edge,
) -> None:
    edge.exchange(
        b"GET / HTTP/1.1\r\nHost: api\r\nX-Forwarded-For: 203.0.113.9\r\n"
        b"X-Forwarded-Proto: https\r\n\r\n"
    )

    [received] = edge.upstream.received
    assert received.headers(b"x-forwarded-for") == [b"203.0.113.9, 127.0.0.1"]
    assert received.headers(b"x-forwarded-proto") == [b"https"]


def test_a_chunked_body_reaches_gunicorn_with_its_length(edge: Edge) -> None:
    answer = edge.exchange(
        b"POST /hook HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    assert answer.status == 200
    [received] = edge.upstream.received
    assert received.body == b"hello world"
    assert received.headers(b"content-length") == [b"11"]
    assert received.headers(b"transfer-encoding") == []


def test_a_client_that_expects_100_continue_gets_it_then_the_answer(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(
            b"POST /hook HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        answer = read_answer(sock)

    assert answer.status == 200
    [received] = edge.upstream.received
    assert (received.body, received.headers(b"expect")) == (b"body", [])


def test_a_kept_alive_connection_serves_requests_each_on_a_new_upstream_connection(
    edge: Edge,
) -> None:
    with edge.connect() as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
            assert read_answer(sock).status == 200

    # gthread reads a PROXY line on a connection's first request only: one each.
    assert [r.proxy_line[:10] for r in edge.upstream.received] == [b"PROXY TCP4"] * 3


def test_gunicorns_connection_close_closes_the_clients_connection(edge: Edge) -> None:
    edge.upstream.answer = (
        b"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n"
        b"Content-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}"
    )
    with edge.connect() as sock:
        sock.sendall(b"GET /long HTTP/1.1\r\nHost: api\r\n\r\n")
        answer = read_answer(sock)

        assert (answer.status, answer.header(b"connection")) == (414, b"close")
        assert answer.header(b"content-type") == b"application/problem+json"
        assert closed_by_peer(sock)


def test_an_http_1_0_request_without_host_is_answered_and_closed(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = read_answer(sock)

        assert answer.status == 200
        assert closed_by_peer(sock)
    [received] = edge.upstream.received
    assert received.headers(b"host") == [f"127.0.0.1:{edge.port}".encode()]


def test_a_head_request_gets_the_head_only(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        answer = read_answer(sock, head_request=True)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        second = read_answer(sock)

    assert (answer.status, answer.header(b"content-length")) == (200, b"12")
    assert second.json() == {"ok": True}  # nothing of a body was left before it


def test_a_large_answer_leaves_gunicorn_before_a_slow_client_reads_it(edge: Edge) -> None:
    body = b"x" * (RESPONSE_BUFFER_BYTES + RESPONSE_BUFFER_BYTES // 2)
    edge.upstream.answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with socket.socket() as sock:
        # A client that does not read, with a small window. The edge's buffers and the
        # kernel's (loopback TCP send buffers grow to megabytes) take the answer.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(IO_TIMEOUT_S)
        sock.connect(("127.0.0.1", edge.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: api\r\n\r\n")

        assert edge.upstream.answered.wait(IO_TIMEOUT_S), "gunicorn still waits on the client"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        answer = read_answer(sock)

    assert answer.body == body


def test_gunicorns_answer_to_a_body_it_did_not_read_reaches_the_client(edge: Edge) -> None:
    edge.upstream.behaviour = "answer_unread"
    edge.upstream.answer = (
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    )
    body = b"y" * 60_000

    answer = edge.exchange(
        b"POST /nowhere HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )

    assert answer.status == 404


def test_no_gunicorn_is_a_503_to_retry(edge: Edge) -> None:
    edge.upstream.path.unlink()

    answer = edge.exchange(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")

    assert_problem(answer, 503, "Service Unavailable", instance="/healthz")
    assert answer.header(b"retry-after") == b"1"


def test_a_head_refused_while_gunicorn_is_away_gets_the_head_only(edge: Edge) -> None:
    edge.upstream.path.unlink()

    with edge.connect() as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        sent = b""
        while chunk := sock.recv(65536):
            sent += chunk

    head, _, content = sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nContent-Length: " in head  # the document's, as GET would have it
    assert content == b""


def test_gunicorn_hanging_up_without_an_answer_is_a_502(edge: Edge) -> None:
    edge.upstream.behaviour = "hang_up"

    answer = edge.exchange(b"GET /healthz?verbose=1 HTTP/1.1\r\nHost: api\r\n\r\n")

    assert_problem(answer, 502, "Bad Gateway", instance="/healthz")


def test_gunicorn_silent_past_the_answer_timeout_is_a_504(edge: Edge) -> None:
    edge.upstream.behaviour = "silent"
    started = time.monotonic()

    answer = edge.exchange(b"GET /slow HTTP/1.1\r\nHost: api\r\n\r\n")

    assert_problem(answer, 504, "Gateway Timeout", instance="/slow")
    assert 0.9 < time.monotonic() - started < IO_TIMEOUT_S


def test_stopping_closes_idle_connections_and_lets_requests_in_progress_finish(
    edge: Edge,
) -> None:
    with edge.connect() as idle, edge.connect() as busy:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: api\r\n\r\n")
        read_answer(idle)  # now idle, kept alive
        busy.sendall(b"POST / HTTP/1.1\r\nHost: api\r\nContent-Length: 4\r\n\r\nbo")
        time.sleep(0.2)

        stopped = edge.loop.submit(edge.server.stop(2.0))
        assert closed_by_peer(idle)
        busy.sendall(b"dy")
        answer = read_answer(busy)
        stopped.result(IO_TIMEOUT_S)

    assert (answer.status, answer.header(b"connection")) == (200, b"close")
    with pytest.raises(ConnectionRefusedError):
        edge.connect()
