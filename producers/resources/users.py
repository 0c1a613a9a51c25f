"""The users API: who is called every day, their call preferences and their calls.

::

    POST /api/users                          201 {"id"} + Location (admin: ?tenant=NAME)
    GET  /api/users                          {"users": [...]} (admin: all, or ?tenant=NAME)
    GET  /api/users/{id}                     the user
    DELETE /api/users/{id}                   forget the user (admin; ``resources.erasure``)
    GET  /api/users/{id}/call-preferences    the preferences
    PUT  /api/users/{id}/call-preferences    replace them; answers them with the next call
    GET  /api/users/{id}/calls?limit=100     the user's calls, newest first

A tenant's key sees only its own users: another tenant's user is a 404, exactly like
an unknown id. The admin token sees every user, and names the tenant of a new user
with ``?tenant=NAME`` (a tenant's key always acts for its own tenant and ignores it).
Bodies are read bounded, parsed as JSON every store can hold and validated into the
``contracts.users`` models; every invalid field is named in a 422.
"""

from __future__ import annotations

from datetime import date, time

import falcon

from contracts.fields import is_identifier
from contracts.users import CallPreferences, NewUser
from infra.documents import call_document, preferences_document, user_document
from infra.store.protocols import OutboundCallBook, TenantDirectory, UserDirectory
from infra.store.records import UserRecord
from producers.auth import BearerAuth, Principal
from producers.errors import ProblemError, unprocessable
from producers.operations import ADMIN_CHANGE, TENANT, TENANT_CHANGE, operation, returns
from producers.payloads import is_storable, parse_document, validate
from producers.resources.erasure import UserErasure
from producers.resources.webhooks import read_body
from producers.schemas.dead_letters import ChangeReason
from producers.schemas.erasure import Erased
from producers.schemas.users import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CreatedUser,
    Page,
    Preferences,
    ScheduledPreferences,
    TenantOfNewUser,
    TenantPage,
    User,
    UserCall,
    UserCalls,
    Users,
)

_WINDOW_DEFAULTS = {"window_start": None, "window_end": None}
"""The window's ends as their defaults: an error about an end the sender left out (a
window needs both) then names that end, since ``validate`` names only sent fields."""


_NOT_FOUND = "no such user, or another tenant's"
_LIMIT = f"`limit` is not an integer from 1 to {MAX_LIMIT}"


def _not_found(user_id: str) -> ProblemError:
    return ProblemError(falcon.HTTP_404, title="User not found", detail=f"no user {user_id}")


def _iso(value: date | time | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_limit(req: falcon.Request) -> int:
    """The ``?limit=`` of a list, 1 to ``MAX_LIMIT`` (``DEFAULT_LIMIT`` when absent).

    Raises:
        ProblemError: 422 naming ``limit``.
    """
    raw = req.get_param("limit")
    if raw is None:
        return DEFAULT_LIMIT
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_LIMIT:
        raise unprocessable(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(digits)


class UserScope:
    """Finds the users a request may see and the tenant it acts for.

    Args:
        users: The users.
        tenants: Resolves the admin's ``?tenant=NAME``.
    """

    def __init__(self, users: UserDirectory, tenants: TenantDirectory) -> None:
        self.users = users
        self._tenants = tenants

    def find(self, user_id: str, principal: Principal) -> UserRecord:
        """The user, if the caller may see them.

        Raises:
            ProblemError: 404 when there is none, or it is another tenant's.
        """
        user = (
            self.users.get_user(user_id, tenant_id=principal.tenant_id)
            if is_identifier(user_id)
            else None
        )
        if user is None:
            raise _not_found(user_id)
        return user

    def named_tenant(self, req: falcon.Request, principal: Principal) -> str | None:
        """The tenant the request acts for: the key's, or the admin's ``?tenant=NAME``.

        None for the admin without ``?tenant=`` (every tenant).

        Raises:
            ProblemError: 422 naming ``tenant`` when no tenant has that name.
        """
        if principal.tenant_id is not None:
            return principal.tenant_id
        name = req.get_param("tenant")
        if name is None:
            return None
        tenant = self._tenants.tenant_by_name(name) if is_storable(name) else None
        if tenant is None:
            raise unprocessable(
                f"no tenant named {name!r}: `switchboard tenants list` shows them",
                field="tenant",
            )
        return tenant.id


class UsersResource:
    """``POST /api/users`` and ``GET /api/users``.

    Args:
        auth: Authenticates the caller.
        scope: The users and tenants.
        max_body_bytes: Larger bodies get 413.
        max_json_depth: Deeper JSON gets 422.
    """

    def __init__(
        self, *, auth: BearerAuth, scope: UserScope, max_body_bytes: int, max_json_depth: int
    ) -> None:
        self._auth = auth
        self._scope = scope
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth

    @operation(
        "addUser",
        summary="Add a user called every day",
        tag="users",
        access=TENANT_CHANGE,
        query=TenantOfNewUser,
        body=NewUser,
        answers=[
            returns(201, "Added.", CreatedUser, headers={"Location": "The user's URL."}),
        ],
        problems={422: "an admin named no tenant, or one that does not exist (`tenant`)"},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Add a user (201 with its id and ``Location``); the admin names the tenant."""
        principal = self._auth.authenticate(req)
        principal.require_change()
        body = read_body(req, self._max_body_bytes)
        tenant_id = self._scope.named_tenant(req, principal)
        if tenant_id is None:
            raise unprocessable(
                "the admin token must name the user's tenant: add ?tenant=NAME", field="tenant"
            )
        document = parse_document(body, max_depth=self._max_json_depth)
        user = self._scope.users.add_user(tenant_id, validate(NewUser, _WINDOW_DEFAULTS | document))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/users/{user.id}"
        resp.media = CreatedUser(id=user.id).media()

    @operation(
        "listUsers",
        summary="The users",
        tag="users",
        access=TENANT,
        query=TenantPage,
        answers=[returns(200, "The users.", Users)],
        problems={422: f"{_LIMIT}; or no tenant has the `tenant` named"},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the caller's users by name (the admin's: all, or ``?tenant=NAME``'s)."""
        principal = self._auth.authenticate(req)
        limit = parse_limit(req)
        tenant_id = self._scope.named_tenant(req, principal)
        users = self._scope.users.list_users(tenant_id=tenant_id, limit=limit)
        resp.media = Users(users=[User.model_validate(user_document(u)) for u in users]).media()


class UserResource:
    """``GET`` and ``DELETE /api/users/{user_id}``."""

    def __init__(self, *, auth: BearerAuth, scope: UserScope, erasure: UserErasure) -> None:
        self._auth = auth
        self._scope = scope
        self._erasure = erasure

    @operation(
        "getUser",
        summary="A user",
        tag="users",
        access=TENANT,
        answers=[returns(200, "The user.", User)],
        problems={404: _NOT_FOUND},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        """Answer the user (404 if unknown or not yours)."""
        principal = self._auth.authenticate(req)
        user = self._scope.find(user_id, principal)
        resp.media = User.model_validate(user_document(user)).media()

    @operation(
        "forgetUser",
        summary="Delete a user's data on request: the user, their calls and their vectors",
        tag="erasure",
        access=ADMIN_CHANGE,
        body=ChangeReason,
        answers=[returns(200, "What went (and what could not go yet).", Erased)],
        problems={422: "no `reason`"},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        """Forget the user (an admin's token; see ``producers.resources.erasure``)."""
        self._erasure.delete(req, resp, user_id)


class CallPreferencesResource:
    """``GET`` and ``PUT /api/users/{user_id}/call-preferences``.

    Args:
        auth: Authenticates the caller.
        scope: The users.
        max_body_bytes: Larger bodies get 413.
        max_json_depth: Deeper JSON gets 422.
    """

    def __init__(
        self, *, auth: BearerAuth, scope: UserScope, max_body_bytes: int, max_json_depth: int
    ) -> None:
        self._auth = auth
        self._scope = scope
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth

    @operation(
        "getCallPreferences",
        summary="A user's call preferences",
        tag="users",
        access=TENANT,
        answers=[returns(200, "The preferences.", Preferences)],
        problems={404: _NOT_FOUND},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        """Answer the user's call preferences (404 if unknown or not yours)."""
        principal = self._auth.authenticate(req)
        preferences = self._scope.find(user_id, principal).preferences
        resp.media = Preferences.model_validate(preferences_document(preferences)).media()

    @operation(
        "setCallPreferences",
        summary="Replace a user's call preferences",
        tag="users",
        access=TENANT_CHANGE,
        body=CallPreferences,
        answers=[returns(200, "The preferences, with the next call.", ScheduledPreferences)],
        problems={404: _NOT_FOUND},
    )
    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        """Replace the preferences; answer them with the next call they give (null: off)."""
        principal = self._auth.authenticate(req)
        principal.require_change()
        body = read_body(req, self._max_body_bytes)
        if not is_identifier(user_id):
            raise _not_found(user_id)
        document = parse_document(body, max_depth=self._max_json_depth)
        preferences = validate(CallPreferences, _WINDOW_DEFAULTS | document)
        user = self._scope.users.set_preferences(
            user_id, preferences, tenant_id=principal.tenant_id
        )
        if user is None:
            raise _not_found(user_id)
        resp.media = ScheduledPreferences.model_validate(
            {
                **preferences_document(user.preferences),
                "next_call_at": _iso(user.next_call_at),
                "next_local_date": _iso(user.next_local_date),
            }
        ).media()


class UserCallsResource:
    """``GET /api/users/{user_id}/calls?limit=100``: the user's calls, newest first."""

    def __init__(self, *, auth: BearerAuth, scope: UserScope, outbound: OutboundCallBook) -> None:
        self._auth = auth
        self._scope = scope
        self._outbound = outbound

    @operation(
        "listUserCalls",
        summary="A user's calls",
        tag="users",
        access=TENANT,
        query=Page,
        answers=[returns(200, "The calls, newest first.", UserCalls)],
        problems={404: _NOT_FOUND, 422: _LIMIT},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        """Answer up to ``limit`` calls (404 if the user is unknown or not yours)."""
        principal = self._auth.authenticate(req)
        limit = parse_limit(req)
        user = self._scope.find(user_id, principal)
        calls = self._outbound.calls_of_user(user.id, limit=limit)
        resp.media = UserCalls(
            calls=[UserCall.model_validate(call_document(call)) for call in calls]
        ).media()
