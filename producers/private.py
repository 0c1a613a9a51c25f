"""Answers that carry people's data are never cached and never sniffed.

The admin API (``/api/admin/…``) answers dead letters with their payloads (phone
numbers, transcripts) and tracebacks, and the audit log; an erasure answer names what
was forgotten of whom. No cache on the way (a browser's, a proxy's) may keep one, and
no browser may take one for anything but the JSON its ``Content-Type`` says. So every
answer under ``/api/admin`` (errors and unknown paths included: a 404 names the id
asked for) and every answer of ``DELETE /api/users/{user_id}`` (the erasure of a user,
whose other answers live under ``/api/users`` without these headers) carries
``PRIVATE_HEADERS``. ``PrivateAnswers`` adds them, ``is_private`` says where, for the
middleware and for the OpenAPI document alike. The console's pages under ``/admin``
carry them already, with their own stricter set (``producers.console.render``).
"""

from __future__ import annotations

from typing import Any

import falcon

ADMIN_PREFIX = "/api/admin"
USER_ERASURE = ("DELETE", "/api/users/{user_id}")
"""The one private answer outside ``ADMIN_PREFIX``: a user's erasure, by its route."""

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
HEADER_MEANINGS = {
    "Cache-Control": "`no-store`: the answer carries people's data, which no cache may keep.",
    "X-Content-Type-Options": "`nosniff`: a browser takes the answer for the JSON it is.",
}
"""What each header says, for the OpenAPI document."""


def is_private(method: str, route: str | None) -> bool:
    """Whether ``method`` on ``route`` (a path, or a route's template) answers privately."""
    if route is None:
        return False
    under_admin = route == ADMIN_PREFIX or route.startswith(f"{ADMIN_PREFIX}/")
    return under_admin or (method.upper(), route) == USER_ERASURE


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
        if is_private(req.method, req.path) or is_private(req.method, req.uri_template):
            resp.set_headers(PRIVATE_HEADERS)
