"""The console's forms: logging in and out, replaying, purging and editing dead letters.

A form is ``application/x-www-form-urlencoded``, at most ``max_body_bytes``. Every
change is checked by ``ConsoleAuth.check_change`` (an admin, the session's CSRF token,
our own ``Origin``) and needs a reason for the audit log. After a change the browser is
sent back where it came from (post/redirect/get) with one line saying what happened; a
script using a bearer token gets that line on a page at once.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs

import falcon

from infra.dlq import Outcome
from infra.store.audit import MAX_REASON_CHARS
from producers.console.auth import ConsoleAuth, ConsoleError, Operator
from producers.console.deps import ConsoleDeps
from producers.console.pages import ConsolePage, DeadLetterPage, console_path, reachable
from producers.errors import ProblemError
from producers.payloads import parse_document
from producers.resources.webhooks import read_body

MAX_IDS = 500
"""Most dead letters one replay or purge form may name."""

Form = dict[str, list[str]]


def read_form(req: falcon.Request, max_bytes: int) -> Form:
    """The request's form fields (each a list: a field may repeat).

    Raises:
        ConsoleError: 415 for another content type, 400 for a body that is not one.
        falcon.HTTPContentTooLarge: The body is larger than ``max_bytes``.
    """
    if (req.content_type or "").split(";")[0].strip() != falcon.MEDIA_URLENCODED:
        raise ConsoleError(falcon.HTTP_415, "Unsupported Media Type", "send the console's own form")
    body = read_body(req, max_bytes)
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_IDS + 10)
    except (UnicodeDecodeError, ValueError) as error:
        raise ConsoleError(falcon.HTTP_400, "Bad Request", f"not a form: {error}") from error


def field(form: Form, name: str) -> str | None:
    """The first value of a form field, or None."""
    values = form.get(name)
    return values[0] if values else None


def _reason(form: Form) -> str:
    reason = (field(form, "reason") or "").strip()
    if not reason:
        raise ConsoleError(
            falcon.HTTP_422, "Reason required", "say why, for the audit log: go back and fill in"
        )
    if len(reason) > MAX_REASON_CHARS:
        raise ConsoleError(
            falcon.HTTP_422, "Reason too long", f"say why in at most {MAX_REASON_CHARS} characters"
        )
    return reason


class LoginPage(ConsolePage):
    """``GET/POST /admin/login``: a token in, a session cookie out."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Show the login form (or go on, when already logged in)."""
        target = console_path(req.get_param("next"), "/admin/queues")
        if self._deps.auth.operator(req) is not None:
            raise falcon.HTTPSeeOther(target)
        self._deps.pages.render(resp, "login.html", next=target, error=None)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Open a session for an admin or viewer token; 401 with the form again if not."""
        ConsoleAuth.check_origin(req)
        form = read_form(req, self._deps.max_body_bytes)
        target = console_path(field(form, "next"), "/admin/queues")
        token = (field(form, "token") or "").strip()
        with reachable():
            opened = self._deps.auth.login(token) if token else None
        if opened is None:
            self._deps.pages.render(
                resp,
                "login.html",
                status=falcon.HTTP_401,
                next=target,
                error="not an active admin or viewer token (a tenant's API key is not one)",
            )
            return
        _, session_id = opened
        self._deps.auth.set_cookie(req, resp, session_id)
        raise falcon.HTTPSeeOther(target)


class LogoutAction(ConsolePage):
    """``POST /admin/logout``: end the session."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """End the session and forget the cookie."""
        operator = self._operator(req)
        form = read_form(req, self._deps.max_body_bytes)
        csrf = field(form, "csrf")
        if operator.session_id is not None and csrf != operator.csrf:
            raise ConsoleError(falcon.HTTP_403, "Forbidden", "reload the page and log out again")
        with reachable():
            self._deps.auth.logout(operator)
        ConsoleAuth.clear_cookie(resp)
        raise falcon.HTTPSeeOther("/admin/login")


def _summary(verb: str, outcomes: list[Outcome]) -> str:
    kinds = Counter(outcome.kind for outcome in outcomes)
    if len(outcomes) == 1:
        return outcomes[0].message
    parts = [f"{kinds[kind]} {kind}" for kind in (verb, "gone", "invalid") if kinds[kind]]
    if kinds["invalid"]:
        parts.append("(edit an invalid payload, then replay it)")
    # Not "Purged 2 dead letters" when both were gone: the count is of those asked for.
    return f"Of {len(outcomes)} dead letters: " + ", ".join(parts)


class _Change(ConsolePage):
    """A change: the operator, checked, and the form."""

    def _begin(self, req: falcon.Request) -> tuple[Operator, Form]:
        operator = self._operator(req)
        form = read_form(req, self._deps.max_body_bytes)
        self._deps.auth.check_change(req, operator, field(form, "csrf"))
        return operator, form

    def _done(self, resp: falcon.Response, operator: Operator, notice: str, back: str) -> None:
        if operator.session_id is None:  # a script: say it now
            self._deps.pages.render(resp, "done.html", operator=operator, notice=notice, back=back)
            return
        with reachable():
            self._deps.auth.leave_notice(operator, notice)
        raise falcon.HTTPSeeOther(back)


class BulkAction(_Change):
    """``POST /admin/dead-letters/replay`` and ``…/purge``: the dead letters named by ``id``.

    Args:
        deps: The console's dependencies.
        verb: ``replayed`` or ``purged``.
    """

    def __init__(self, deps: ConsoleDeps, *, verb: str) -> None:
        super().__init__(deps)
        self._verb = verb

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Replay (or purge) each dead letter, audited; back with a summary."""
        operator, form = self._begin(req)
        back = console_path(field(form, "back"), "/admin/dead-letters")
        ids = [value.strip() for value in form.get("id", []) if value.strip()]
        if not ids:
            self._done(resp, operator, "nothing selected: tick the dead letters first", back)
            return
        if len(ids) > MAX_IDS:
            raise ConsoleError(
                falcon.HTTP_422, "Too many", f"at most {MAX_IDS} at a time; filter the list"
            )
        reason = _reason(form)
        act = self._deps.desk.replay if self._verb == "replayed" else self._deps.desk.purge
        with reachable():
            outcomes = [act(message_id, actor=operator.name, reason=reason) for message_id in ids]
        self._done(resp, operator, _summary(self._verb, outcomes), back)


class EditAction(_Change):
    """``POST /admin/dead-letters/{message_id}/payload``: keep a fixed payload."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        """Keep the payload if its contract accepts it; else the form again, with why."""
        operator, form = self._begin(req)
        reason = _reason(form)
        draft = field(form, "payload") or ""
        page = DeadLetterPage(self._deps)
        try:
            payload = parse_document(draft.encode(), max_depth=self._deps.max_json_depth)
        except ProblemError as error:  # not JSON, too deep, NUL or a lone surrogate
            # The form's payload, not the request's body, is what the operator typed.
            why = [
                f"payload{'' if e['field'] == 'body' else '.' + e['field']}: {e['message']}"
                for e in error.extensions.get("errors", [])
            ]
            page.show(resp, operator, message_id, draft=draft, rejected=why)
            return
        with reachable():
            outcome = self._deps.desk.edit(message_id, payload, actor=operator.name, reason=reason)
        if outcome.kind == "rejected":
            rejected = list(outcome.violations) or [outcome.outcome]
            page.show(resp, operator, message_id, draft=draft, rejected=rejected)
            return
        self._done(resp, operator, outcome.message, f"/admin/dead-letters/{message_id}")
