"""Who is using the console: a session cookie from a token login, or a bearer token.

A person logs in at ``/admin/login`` with an admin or viewer token; the console opens
a session (``infra.store.sessions``) and sets its id as a cookie that is ``HttpOnly``
(no script can read it), ``SameSite=Strict`` (no other site's page or link sends it),
scoped to ``/admin`` and ``Secure`` when the request came over HTTPS. A session ends
at logout, when it expires, and as soon as its token is revoked.

Every change made through a session carries the session's CSRF token in its form,
compared in constant time, and a browser's ``Origin``, when it sends one, must be the
console's own. A script sends ``Authorization: Bearer <admin token>`` instead: a
browser never attaches that header by itself, so such requests need no CSRF token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import falcon

from infra.store.admins import Role
from infra.store.sessions import ConsoleSession
from producers.auth import BearerAuth

COOKIE = "switchboard_console"
COOKIE_PATH = "/admin"


class ConsoleSessions(Protocol):
    """Console sessions (``infra.store.sessions.SqlConsoleSessions``)."""

    def open(
        self, *, admin: str, role: Role, token: str, ttl: timedelta
    ) -> tuple[str, ConsoleSession]:
        """Start a session; return its id and the session."""
        ...

    def get(self, session_id: str) -> ConsoleSession | None:
        """The open, unexpired session, or None."""
        ...

    def close(self, session_id: str) -> bool:
        """End a session."""
        ...

    def leave_notice(self, session_id: str, notice: str) -> None:
        """Keep a line for the session's next page."""
        ...

    def take_notice(self, session_id: str) -> str | None:
        """The line left for this page, removed."""
        ...


class ConsoleError(Exception):
    """A console page that cannot be shown: rendered as an HTML error page.

    Args:
        status: The HTTP status.
        title: A short summary.
        detail: What happened and what to do.
    """

    def __init__(self, status: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class Operator:
    """The person (or script) at the console.

    Attributes:
        name: The admin token's name, as the audit log records it.
        role: ``admin`` may change things; ``viewer`` may look.
        session_id: The session's id; None for a bearer token.
        csrf: The session's CSRF token; None for a bearer token.
    """

    name: str
    role: Role
    session_id: str | None = None
    csrf: str | None = None

    @property
    def may_change(self) -> bool:
        """Whether this operator may replay, purge and edit."""
        return self.role == "admin"


class ConsoleAuth:
    """Resolves a request to its ``Operator``.

    Args:
        bearer: The API's token resolution (admin, viewer and tenant tokens).
        sessions: The console sessions.
        ttl: How long a login lasts.
    """

    def __init__(self, bearer: BearerAuth, sessions: ConsoleSessions, ttl: timedelta) -> None:
        self._bearer = bearer
        self._sessions = sessions
        self.ttl = ttl

    def operator(self, req: falcon.Request) -> Operator | None:
        """The request's operator, or None when it has no valid session.

        Raises:
            falcon.HTTPUnauthorized: An ``Authorization`` header with a bad token.
            ConsoleError: 403 for a tenant's key: the console is shared by every tenant.
        """
        if req.get_header("Authorization"):
            principal = self._bearer.authenticate(req)
            if principal.admin is None or principal.role is None:
                raise ConsoleError(
                    falcon.HTTP_403, "Forbidden", "a tenant's key cannot open the console"
                )
            return Operator(principal.admin, principal.role)
        session_id = req.cookies.get(COOKIE)
        session = self._sessions.get(session_id) if session_id else None
        if session_id is None or session is None:
            return None
        if not self._bearer.admin_still_valid(session.token_hash):
            self._sessions.close(session_id)
            return None
        return Operator(session.admin, session.role, session_id, session.csrf)

    def login(self, token: str) -> tuple[Operator, str] | None:
        """Open a session for an admin or viewer ``token``: the operator and session id.

        None when the token is not an active admin or viewer token (a tenant's key is not).
        """
        principal = self._bearer.resolve(token)
        if principal is None or principal.admin is None or principal.role is None:
            return None
        session_id, session = self._sessions.open(
            admin=principal.admin, role=principal.role, token=token, ttl=self.ttl
        )
        operator = Operator(principal.admin, principal.role, session_id, session.csrf)
        return operator, session_id

    def logout(self, operator: Operator) -> None:
        """End the operator's session (a bearer token has none)."""
        if operator.session_id is not None:
            self._sessions.close(operator.session_id)

    def check_change(self, req: falcon.Request, operator: Operator, csrf: str | None) -> None:
        """Refuse a change a viewer asks for, or one that did not come from our own form.

        Raises:
            ConsoleError: 403 for a viewer, a missing or wrong CSRF token, or an
                ``Origin`` that is not the console's.
        """
        if not operator.may_change:
            raise ConsoleError(
                falcon.HTTP_403,
                "Forbidden",
                f"the token {operator.name} is a viewer's: it may look, not change",
            )
        if operator.session_id is None:
            return
        self.check_origin(req)
        if csrf is None or operator.csrf is None or not hmac.compare_digest(csrf, operator.csrf):
            raise ConsoleError(
                falcon.HTTP_403,
                "Forbidden",
                "this form is stale or did not come from the console: reload the page and retry",
            )

    @staticmethod
    def check_origin(req: falcon.Request) -> None:
        """Refuse a form a browser posted from another site's page.

        Applied to every change and to the login form (so another site cannot log a
        browser into a session of its choosing). A browser sends ``Origin`` with every
        POST; a script that sends none is not a browser another site could drive.

        Raises:
            ConsoleError: 403 for an ``Origin`` that is not the console's.
        """
        origin = req.get_header("Origin")
        own = f"{req.forwarded_scheme}://{req.forwarded_host}"
        if origin is not None and origin != own:
            raise ConsoleError(
                falcon.HTTP_403, "Forbidden", f"a form from {origin} is not this console's"
            )

    def notice(self, operator: Operator) -> str | None:
        """The line a change left for this page, if any."""
        if operator.session_id is None:
            return None
        return self._sessions.take_notice(operator.session_id)

    def leave_notice(self, operator: Operator, notice: str) -> None:
        """Keep ``notice`` for the operator's next page."""
        if operator.session_id is not None:
            self._sessions.leave_notice(operator.session_id, notice)

    def set_cookie(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Send the session cookie: HttpOnly, SameSite=Strict, /admin, Secure over HTTPS."""
        resp.set_cookie(
            COOKIE,
            session_id,
            max_age=int(self.ttl.total_seconds()),
            path=COOKIE_PATH,
            secure=req.forwarded_scheme == "https",
            http_only=True,
            same_site="Strict",
        )

    @staticmethod
    def clear_cookie(resp: falcon.Response) -> None:
        """Remove the session cookie."""
        resp.unset_cookie(COOKIE, path=COOKIE_PATH)
