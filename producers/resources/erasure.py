"""Deletion on request over HTTP: what ``switchboard forget`` does, audited.

::

    DELETE /api/admin/calls/{conversation_id}?tenant=NAME   {"reason"} → the erasure
    DELETE /api/users/{user_id}                              {"reason"} → the erasure

Both need an admin's token (a viewer's or a tenant's key is a 403) and a JSON body
with a ``reason``, recorded in the audit log with the token's name. The answer says
what went::

    {"outcome": "deleted" | "nothing left" | "partial", "subject": "call acme/conv_1",
     "deleted": {"jobs": 1, "call logs": 1, "vectors": 6, ...}, "calls": [...],
     "kept": ["dead letters: broker unreachable ..."]}

``partial``: something could not go now (a call still being processed, dead letters
the broker could not show); sending the same request later finishes it. Deleting
again answers ``nothing left``, for an id that never existed too. A store or vector
index that is down is a 503 (``Retry-After``), and what went before stays gone.
"""

from __future__ import annotations

from typing import Any, Protocol

import falcon

from contracts.fields import is_identifier
from infra.erasure import Erasure
from infra.store.erasure import LABELS, CallKey
from infra.store.protocols import TenantDirectory
from producers.auth import BearerAuth
from producers.errors import unprocessable
from producers.operations import ADMIN_CHANGE, operation, returns
from producers.payloads import is_storable, parse_document, reason_of
from producers.resources.webhooks import read_body
from producers.schemas.dead_letters import ChangeReason
from producers.schemas.erasure import Erased, ErasureTenant


class ErasurePort(Protocol):
    """Forgets calls and users, auditing each (``infra.erasure.Eraser``)."""

    def forget_call(self, key: CallKey, *, tenant_name: str, actor: str, reason: str) -> Erasure:
        """Forget one call of a tenant."""
        ...

    def forget_user(self, user_id: str, *, actor: str, reason: str) -> Erasure:
        """Forget one user and their calls."""
        ...


def erasure_document(erasure: Erasure) -> dict[str, Any]:
    """The answer of a deletion."""
    return {
        "outcome": erasure.outcome,
        "subject": erasure.subject,
        "deleted": {label: erasure.deleted[label] for label in LABELS if erasure.deleted[label]},
        "calls": [key.conversation_id for key in erasure.calls],
        "kept": list(erasure.kept),
        "left": list(erasure.left),
    }


class ErasureRequest:
    """Reads who deletes and why: an admin's token and a bounded body with a ``reason``.

    Args:
        auth: Authenticates the admin.
        max_body_bytes: Larger bodies get 413.
        max_json_depth: Deeper JSON gets 422.
    """

    def __init__(self, *, auth: BearerAuth, max_body_bytes: int, max_json_depth: int) -> None:
        self._auth = auth
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth

    def begin(self, req: falcon.Request) -> tuple[str, str]:
        """The admin's name and the reason (403 for anyone else, 422 without a reason)."""
        actor = self._auth.authenticate(req).require_admin(change=True)
        document = parse_document(
            read_body(req, self._max_body_bytes), max_depth=self._max_json_depth
        )
        return actor, reason_of(document)


class CallErasureResource:
    """``DELETE /api/admin/calls/{conversation_id}?tenant=NAME``."""

    def __init__(
        self, *, request: ErasureRequest, eraser: ErasurePort, tenants: TenantDirectory
    ) -> None:
        self._request = request
        self._eraser = eraser
        self._tenants = tenants

    @operation(
        "forgetCall",
        summary="Delete a call's data on request",
        tag="erasure",
        access=ADMIN_CHANGE,
        query=ErasureTenant,
        body=ChangeReason,
        answers=[returns(200, "What went (and what could not go yet).", Erased)],
        problems={422: "no `reason`, or no tenant by the `tenant` named"},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        """Forget the tenant's call (422 naming ``tenant`` when it is missing or unknown)."""
        actor, reason = self._request.begin(req)
        name = req.get_param("tenant")
        tenant = self._tenants.tenant_by_name(name) if name and is_storable(name) else None
        if tenant is None:
            raise unprocessable(
                f"no tenant is named {name!r} (`switchboard tenants list`)"
                if name
                else "name the call's tenant: ?tenant=NAME (`switchboard tenants list`)",
                field="tenant",
            )
        if not is_identifier(conversation_id):
            raise unprocessable("is not a conversation id", field="conversation_id")
        erasure = self._eraser.forget_call(
            CallKey(tenant.id, conversation_id), tenant_name=tenant.name, actor=actor, reason=reason
        )
        resp.media = Erased.model_validate(erasure_document(erasure)).media()


class UserErasure:
    """``DELETE /api/users/{user_id}``, answered by the user resource."""

    def __init__(self, *, request: ErasureRequest, eraser: ErasurePort) -> None:
        self._request = request
        self._eraser = eraser

    def delete(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        """Forget the user and the calls from or to their number."""
        actor, reason = self._request.begin(req)
        if not is_identifier(user_id):
            raise unprocessable("is not a user id", field="user_id")
        erasure = self._eraser.forget_user(user_id, actor=actor, reason=reason)
        resp.media = Erased.model_validate(erasure_document(erasure)).media()
