"""Answers that carry people's data are never cached and never sniffed.

The API's answers carry people's data: users with their phone numbers, calls with
their summaries and transcripts, jobs, dead letters with their payloads and
tracebacks, the audit log, erasures naming whom they forgot. No cache on the way (a
browser's, a proxy's) may keep one, and no browser may take one for anything but the
JSON its ``Content-Type`` says. So every answer under ``/api/`` (errors and unknown
paths included: a 404 names the id asked for) carries ``PRIVATE_HEADERS``, but the
webhooks' (``/api/webhooks/``: a job id for the sender). ``PrivateAnswers`` adds them,
``is_private`` says where, for the middleware and for the OpenAPI document alike. The
console's pages under ``/admin`` carry them already, with their own stricter set
(``producers.console.render``).
"""

from __future__ import annotations

from typing import Any

import falcon

API_PREFIX = "/api/"
WEBHOOKS_PREFIX = "/api/webhooks/"
"""The one part of the API whose answers carry nobody's data: a job id for the sender."""

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
HEADER_MEANINGS = {
    "Cache-Control": "`no-store`: the answer carries people's data, which no cache may keep.",
    "X-Content-Type-Options": "`nosniff`: a browser takes the answer for the JSON it is.",
}
"""What each header says, for the OpenAPI document."""


def is_private(route: str | None) -> bool:
    """Whether answers on ``route`` (a path, or a route's template) are private."""
    if route is None:
        return False
    return route.startswith(API_PREFIX) and not route.startswith(WEBHOOKS_PREFIX)


class PrivateAnswers:
    """The Falcon middleware that adds ``PRIVATE_HEADERS`` to private answers.

    Falcon calls ``process_response`` for every answer, a raised error's too, so a
    responder cannot forget them.
    """

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,  # noqa: ARG002 (falcon's signature)
        req_succeeded: bool,  # noqa: ARG002
    ) -> None:
        """Add the headers when the request's path or its route is private."""
        if is_private(req.path):  # a route's template starts as its paths do
            resp.set_headers(PRIVATE_HEADERS)
