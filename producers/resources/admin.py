"""The dead-letter admin API: what ``switchboard dlq`` does, over HTTP, audited.

::

    GET  /api/admin/dead-letters?queue=&actor=&error=&since=&tenant=&job=&limit=
                                                {"dead_letters": [...]}, newest first
    GET  /api/admin/dead-letters/{id}           one in full: traceback, options, payload
    PUT  /api/admin/dead-letters/{id}/payload   {"payload", "reason"} → {"outcome", "message"}
    POST /api/admin/dead-letters/{id}/replay    {"reason"} → {"outcome", "message", "job_id"}
    POST /api/admin/dead-letters/{id}/purge     {"reason"} → {"outcome", "message", "job_id"}
    GET  /api/admin/audit?target=&action=&limit=   {"entries": [...]}, newest first

Reading needs an admin or a viewer's token, changing an admin's (a viewer gets 403, a
tenant's key 403 everywhere: dead letters are shared). Every change goes through the
dead-letter desk (``infra.dlq``), which audits it under the token's name. A payload its
contract refuses changes nothing: an edit is a 422 naming each violation, a replay a
409 (edit it first). A dead letter that is not (or no longer) there is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import falcon
from pydantic import BaseModel

from infra.bus.dead_letters import DeadLetter
from infra.dlq import (
    ACTORS,
    QUEUES,
    Outcome,
    Selection,
    entry_document,
    letter_document,
    since_moment,
)
from infra.store.audit import ACTIONS, AuditEntry
from infra.store.protocols import TenantDirectory
from producers.auth import BearerAuth
from producers.errors import ProblemError, unprocessable
from producers.operations import ADMIN_CHANGE, ADMIN_READ, operation, returns
from producers.payloads import is_storable, parse_document, reason_of
from producers.resources.users import parse_limit
from producers.resources.webhooks import read_body
from producers.schemas.dead_letters import (
    AuditFilters,
    AuditLog,
    AuditLogEntry,
    ChangeReason,
    DeadLetterDetail,
    DeadLetterEntry,
    DeadLetterFilters,
    DeadLetters,
    Handled,
    PayloadEdit,
    PayloadKept,
)


class DeadLetterDeskPort(Protocol):
    """Reads and changes dead letters, auditing each change (``infra.dlq.DeadLetterDesk``)."""

    def get(self, message_id: str) -> DeadLetter | None:
        """The dead letter with this id, if any."""
        ...

    def find(self, selection: Selection, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters ``selection`` matches."""
        ...

    def entries(
        self, *, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The audit log, newest first."""
        ...

    def replay(self, message_id: str, *, actor: str, reason: str) -> Outcome:
        """Send the dead letter back to its queue."""
        ...

    def purge(self, message_id: str, *, actor: str, reason: str) -> Outcome:
        """Delete the dead letter."""
        ...

    def edit(self, message_id: str, payload: Any, *, actor: str, reason: str) -> Outcome:
        """Keep ``payload`` as the dead letter's if its contract accepts it."""
        ...


_GONE = {404: "no such dead letter (replayed or purged already?)"}


def _not_found(message_id: str) -> ProblemError:
    return ProblemError(
        falcon.HTTP_404,
        title="Dead letter not found",
        detail=f"no dead letter {message_id} (replayed or purged already?)",
    )


def only_parameters(req: falcon.Request, query: type[BaseModel]) -> None:
    """Refuse a query parameter ``query`` does not declare (422 naming it).

    A filter the API does not know must not be ignored: a list "by job" that silently
    lists everything could be purged whole.
    """
    known = set(query.model_fields)
    for name in req.params:
        if name not in known:
            raise unprocessable(
                f"unknown query parameter; known: {', '.join(sorted(known))}", field=name
            )


def _known(name: str, value: str | None, known: list[str] | tuple[str, ...]) -> str | None:
    if value is not None and value not in known:
        raise unprocessable(f"unknown {name} {value!r}; known: {', '.join(known)}", field=name)
    return value


def tenant_ids(tenants: TenantDirectory, tenant: str | None) -> frozenset[str] | None:
    """The tenant ids a ``tenant`` filter (a tenant's id or name) selects; None: every one."""
    if tenant is None:
        return None
    named = tenants.tenant_by_name(tenant) if is_storable(tenant) else None
    return frozenset({tenant} if named is None else {tenant, named.id})


def _violation(problem: str) -> dict[str, str]:
    location, _, message = problem.partition(": ")
    if not message:
        return {"field": "payload", "message": problem}
    return {"field": f"payload.{location}", "message": message}


class _Admin:
    """What every admin resource holds: the caller's check and the desk."""

    def __init__(self, *, auth: BearerAuth, desk: DeadLetterDeskPort) -> None:
        self._auth = auth
        self._desk = desk


class DeadLettersResource(_Admin):
    """``GET /api/admin/dead-letters``: the newest dead letters the filters select.

    Args:
        auth: Authenticates the admin or viewer.
        desk: The dead letters.
        tenants: Resolves ``?tenant=NAME``.
    """

    def __init__(
        self, *, auth: BearerAuth, desk: DeadLetterDeskPort, tenants: TenantDirectory
    ) -> None:
        super().__init__(auth=auth, desk=desk)
        self._tenants = tenants

    @operation(
        "listDeadLetters",
        summary="The newest dead letters the filters select",
        tag="dead letters",
        access=ADMIN_READ,
        query=DeadLetterFilters,
        answers=[returns(200, "The dead letters, newest first.", DeadLetters)],
        problems={
            422: "an unknown queue or actor, a bad `since` or `limit`, a parameter not listed here"
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ``{"dead_letters": [...]}``, newest first (422 naming a bad filter)."""
        self._auth.authenticate(req).require_admin(change=False)
        only_parameters(req, DeadLetterFilters)
        limit = parse_limit(req)
        for name in ("error", "job"):
            value = req.get_param(name)
            if value is not None and not is_storable(value):
                raise unprocessable("is not text the store can hold", field=name)
        selection = Selection(
            queue=_known("queue", req.get_param("queue"), QUEUES),
            actor=_known("actor", req.get_param("actor"), ACTORS),
            error=req.get_param("error"),
            since=self._since(req.get_param("since")),
            tenant_ids=tenant_ids(self._tenants, req.get_param("tenant")),
            job_id=req.get_param("job"),
        )
        found = self._desk.find(selection, limit)
        resp.media = DeadLetters(
            dead_letters=[
                DeadLetterEntry.model_validate(letter_document(letter, full=False))
                for letter in found
            ]
        ).media()

    @staticmethod
    def _since(value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            return since_moment(value, datetime.now(UTC))
        except ValueError as error:
            raise unprocessable(
                "an ISO time (UTC unless it has an offset) or a duration ago: 30m, 2h, 1d",
                field="since",
            ) from error


class DeadLetterResource(_Admin):
    """``GET /api/admin/dead-letters/{message_id}``."""

    @operation(
        "getDeadLetter",
        summary="A dead letter in full",
        tag="dead letters",
        access=ADMIN_READ,
        answers=[returns(200, "The dead letter.", DeadLetterDetail)],
        problems=_GONE,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        """Answer the dead letter in full (404 when there is none)."""
        self._auth.authenticate(req).require_admin(change=False)
        letter = self._desk.get(message_id)
        if letter is None:
            raise _not_found(message_id)
        resp.media = DeadLetterDetail.model_validate(letter_document(letter, full=True)).media()


class _Change(_Admin):
    """A change: an admin's token, a bounded JSON body with a ``reason``."""

    def __init__(
        self,
        *,
        auth: BearerAuth,
        desk: DeadLetterDeskPort,
        max_body_bytes: int,
        max_json_depth: int,
    ) -> None:
        super().__init__(auth=auth, desk=desk)
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth

    def _begin(self, req: falcon.Request) -> tuple[str, dict[str, Any]]:
        """The admin's name and the body (403 for a viewer, 422 for a bad body)."""
        actor = self._auth.authenticate(req).require_admin(change=True)
        body = read_body(req, self._max_body_bytes)
        return actor, parse_document(body, max_depth=self._max_json_depth)


def _answer(resp: falcon.Response, outcome: Outcome, message_id: str) -> None:
    if outcome.kind == "gone":
        raise _not_found(message_id)
    if outcome.kind == "invalid":
        raise ProblemError(
            falcon.HTTP_409,
            title="Invalid payload",
            detail=f"{outcome.message}: fix it with PUT .../payload first",
            extensions={"errors": [_violation(problem) for problem in outcome.violations]},
        )
    resp.media = Handled(
        outcome=outcome.outcome, message=outcome.message, job_id=outcome.job_id
    ).media()


class ReplayResource(_Change):
    """``POST /api/admin/dead-letters/{message_id}/replay``: back to its queue, job requeued."""

    @operation(
        "replayDeadLetter",
        summary="Replay a dead letter",
        tag="dead letters",
        access=ADMIN_CHANGE,
        body=ChangeReason,
        answers=[returns(200, "Back on its queue; its job is processing again.", Handled)],
        problems={
            **_GONE,
            409: "its payload is invalid under its contract: `errors` lists why (edit it first)",
            422: "no `reason`",
        },
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        """Replay it (409 when its payload is invalid, 404 when it is gone)."""
        actor, document = self._begin(req)
        outcome = self._desk.replay(message_id, actor=actor, reason=reason_of(document))
        _answer(resp, outcome, message_id)


class PurgeResource(_Change):
    """``POST /api/admin/dead-letters/{message_id}/purge``: delete it for good."""

    @operation(
        "purgeDeadLetter",
        summary="Purge a dead letter",
        tag="dead letters",
        access=ADMIN_CHANGE,
        body=ChangeReason,
        answers=[returns(200, "Deleted for good; its job stays failed.", Handled)],
        problems={**_GONE, 422: "no `reason`"},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        """Purge it (404 when it is gone); its job stays failed."""
        actor, document = self._begin(req)
        outcome = self._desk.purge(message_id, actor=actor, reason=reason_of(document))
        _answer(resp, outcome, message_id)


class PayloadResource(_Change):
    """``PUT /api/admin/dead-letters/{message_id}/payload``: fix a payload before a replay."""

    @operation(
        "editDeadLetterPayload",
        summary="Fix a dead letter's payload before a replay",
        tag="dead letters",
        access=ADMIN_CHANGE,
        body=PayloadEdit,
        answers=[returns(200, "Kept (or unchanged).", PayloadKept)],
        problems={
            **_GONE,
            422: "no `reason` or `payload`, or a payload its contract refuses: `errors` "
            "lists each violation, and nothing changed",
        },
    )
    def on_put(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        """Keep the payload if its contract accepts it (422 with the violations if not)."""
        actor, document = self._begin(req)
        reason = reason_of(document)
        if "payload" not in document:
            raise unprocessable("is required", field="payload")
        outcome = self._desk.edit(message_id, document["payload"], actor=actor, reason=reason)
        if outcome.kind == "gone":
            raise _not_found(message_id)
        if outcome.kind == "rejected":
            errors = [_violation(problem) for problem in outcome.violations] or [
                {"field": "payload", "message": outcome.outcome}
            ]
            raise ProblemError(
                falcon.HTTP_422,
                title="Unprocessable Content",
                detail=outcome.message,
                extensions={"errors": errors},
            )
        resp.media = PayloadKept(outcome=outcome.outcome, message=outcome.message).media()


class AuditResource(_Admin):
    """``GET /api/admin/audit?target=&action=&limit=``: who changed what, newest first."""

    @operation(
        "listAuditEntries",
        summary="Who replayed, purged or edited what, and why",
        tag="dead letters",
        access=ADMIN_READ,
        query=AuditFilters,
        answers=[returns(200, "The entries, newest first.", AuditLog)],
        problems={
            422: "a bad `limit` or `target`, an unknown `action`, a parameter not listed here"
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ``{"entries": [...]}``, newest first."""
        self._auth.authenticate(req).require_admin(change=False)
        only_parameters(req, AuditFilters)
        limit = parse_limit(req)
        target = req.get_param("target")
        if target is not None and not is_storable(target):
            raise unprocessable("is not text the store can hold", field="target")
        action = _known("action", req.get_param("action"), ACTIONS)
        entries = self._desk.entries(target=target, action=action, limit=limit)
        resp.media = AuditLog(
            entries=[AuditLogEntry.model_validate(entry_document(entry)) for entry in entries]
        ).media()
