"""The answers the edge gives itself, as RFC 9457 problem documents, and their access lines.

Every answer of the API is ``application/problem+json`` when it is an error, gunicorn's
own included (``producers.serving``); the edge's are too. The edge answers only when it
will not forward a request (it is malformed, too large, too slow) or cannot (gunicorn is
not there, or does not answer), and then closes the connection: the rest of a refused
request, if any, is never read. A document names the request's path (without its query
string) as ``instance``, like the app's, once the edge has parsed the request's head;
the refusal of a head it could not parse (malformed, too large, too slow), of a request
line too long to echo (414) and of a connection over the limit (503) has none.

::

    Refusal            a request the edge answers itself, then closes the connection
    └── status         400 malformed, 408 too slow, 413/414/431 too large,
                       501/505 not supported, 502/503/504 gunicorn missing or silent
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from infra.logs import get_logger

PROBLEM_JSON = "application/problem+json"

REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
"""RFC 9110's reason phrases (Python's ``HTTPStatus`` still has older ones for 413 and 414)."""

_access = get_logger("edge.access")


@dataclass(frozen=True)
class RequestLine:
    """What is known of a request when it is refused (nothing when its head is incomplete).

    ``path`` is the request target without its query string, as the client sent it: the
    access line's ``path`` and the problem document's ``instance``.
    """

    method: str | None = None
    path: str | None = None
    user_agent: str | None = None
    started: float = field(default_factory=time.monotonic)


class Refusal(Exception):  # noqa: N818 (a refusal is the answer, not an error of the edge)
    """A request the edge answers itself with a problem document, then closes.

    Args:
        status: The HTTP status (a key of ``REASONS``).
        detail: What was wrong, for the client.
        request: What is known of the request, for the access line.
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        request: RequestLine | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail
        self.request = request or RequestLine()
        self.headers = headers

    def document(self) -> dict[str, object]:
        """The problem document; ``instance`` is the request's path once it is known."""
        document: dict[str, object] = {
            "type": "about:blank",
            "title": REASONS[self.status],
            "status": self.status,
            "detail": self.detail,
        }
        if self.request.path is not None:
            document["instance"] = self.request.path
        return document

    def response(self) -> bytes:
        """The whole HTTP/1.1 answer: head and problem document, closing the connection.

        The answer to a ``HEAD`` is the head alone (RFC 9110, 9.3.2: it has no content),
        with the ``Content-Length`` the document would have.
        """
        reason = REASONS[self.status]
        body = json.dumps(self.document()).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        return head.encode("latin-1") + (b"" if self.request.method == "HEAD" else body)

    def log(self, remote_addr: str | None, sent: int) -> None:
        """One access line, of the same shape as gunicorn's (``producers.gunicorn_logs``)."""
        _access.info(
            "request",
            method=self.request.method,
            path=self.request.path,
            status=self.status,
            duration_ms=round((time.monotonic() - self.request.started) * 1000, 1),
            remote_addr=remote_addr,
            bytes=sent,
            user_agent=self.request.user_agent,
        )
