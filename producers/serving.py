"""gunicorn's own error answers as problem+json, like every other answer of the API.

gunicorn answers requests it cannot parse (a request line over its limit: 414; a
malformed header: 400; too many headers: 431) itself, before the app sees them, with an
HTML page. It has no hook for that page: ``install_problem_errors`` replaces the one
function that writes it (``gunicorn.util.write_error``), from the gunicorn config, in
the master before the workers fork.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

PROBLEM_JSON = "application/problem+json"


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Write gunicorn's error answer as an RFC 9457 problem document."""
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status_int, "detail": mesg or reason}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install_problem_errors() -> None:
    """Make gunicorn write its error answers as problem+json (idempotent)."""
    util.write_error = write_problem
