"""The edge's limits, read from ``SWITCHBOARD_API__*``.

What a connection may hold in the edge's memory is bounded: a request head of
``max_header_bytes``, a body of ``max_body_bytes``, and an answer of up to
``RESPONSE_BUFFER_BYTES`` waiting for the client twice (once read from gunicorn, once
written to the client). With ``max_connections`` connections at most, the edge holds at
most ``max_connections x (max_header_bytes + max_body_bytes + 2 x RESPONSE_BUFFER_BYTES)``:
512 x (64 KiB + 5 MiB + 2 MiB) ~ 3.6 GiB at the defaults, in the worst case of every
connection sending the largest request at once; webhooks of a few kilobytes cost that.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.settings import ApiSettings

RESPONSE_BUFFER_BYTES = 1024 * 1024
"""Answer bytes held for a client that reads slowly before gunicorn is made to wait: an
answer this large is off gunicorn's thread at once, however slowly the client reads."""

READ_CHUNK_BYTES = 64 * 1024
"""The most one read from a socket takes."""


@dataclass(frozen=True)
class EdgeLimits:
    """How long and how much the edge waits for and holds, per connection.

    Attributes:
        max_header_bytes: A larger request head is refused with 431 (414 when its
            request line alone is this long).
        max_body_bytes: A larger body is refused with 413.
        header_timeout_s: A request head must be whole within this of the connection
            opening (of its first byte on a kept-alive connection); else 408.
        body_timeout_s: A body must be whole within this of its head; else 408. A client
            must also read each part of its answer within this, or it is dropped.
        keepalive_s: An idle kept-alive connection is closed after this.
        answer_timeout_s: gunicorn's answer must start, and each part of it arrive,
            within this; else 504 (or the connection is dropped mid-answer).
        max_connections: Client connections held at once; one more is answered 503.
    """

    max_header_bytes: int
    max_body_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    keepalive_s: float
    answer_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, api: ApiSettings) -> EdgeLimits:
        """The limits ``SWITCHBOARD_API__*`` set."""
        return cls(
            max_header_bytes=api.max_header_bytes,
            max_body_bytes=api.max_body_bytes,
            header_timeout_s=api.header_timeout_s,
            body_timeout_s=api.body_timeout_s,
            keepalive_s=api.keepalive_s,
            answer_timeout_s=api.answer_timeout_s,
            max_connections=api.max_connections,
        )
