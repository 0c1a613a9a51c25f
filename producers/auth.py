"""Bearer-token authentication of the API.

``Authorization: Bearer <key>``: an admin token sees every tenant; a tenant's API key
sees only that tenant. Admin tokens are ``SWITCHBOARD_ADMIN_TOKEN`` (the bootstrap
admin) and the named tokens of ``switchboard admins add NAME --role admin|viewer``; a
viewer may look at everything an admin may, but change nothing. Anything else is a 401
problem carrying ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

import falcon

from infra.store.admins import TOKEN_PREFIX, AdminToken, Role
from infra.store.protocols import TenantDirectory
from infra.store.tenants import hash_api_key
from producers.errors import ProblemError

BOOTSTRAP_ADMIN = "bootstrap-admin"
"""How the audit log names the holder of ``SWITCHBOARD_ADMIN_TOKEN``."""


@dataclass(frozen=True)
class Principal:
    """Who is calling.

    Attributes:
        tenant_id: The caller's tenant, or None for an admin (who sees every tenant).
        admin: The admin token's name (None for a tenant).
        role: ``admin`` or ``viewer`` for an admin token, None for a tenant.
    """

    tenant_id: str | None
    admin: str | None = None
    role: Role | None = None

    def require_change(self) -> None:
        """Refuse a viewer's token a change (a tenant's key changes its own data).

        Raises:
            ProblemError: 403 for a viewer.
        """
        if self.admin is not None:
            self.require_admin(change=True)

    def require_admin(self, *, change: bool) -> str:
        """The admin's name, if this caller may look (``change``: may change) as one.

        Raises:
            ProblemError: 403 for a tenant's key, or a viewer asking to change.
        """
        if self.admin is None:
            raise ProblemError(
                falcon.HTTP_403,
                title="Forbidden",
                detail="this is shared by every tenant: use an admin token",
            )
        if change and self.role != "admin":
            raise ProblemError(
                falcon.HTTP_403,
                title="Forbidden",
                detail=f"the token {self.admin} is a viewer's: it may look, not change",
            )
        return self.admin


class AdminTokens(Protocol):
    """Named admin tokens (``infra.store.admins.SqlAdminTokens``)."""

    def for_token(self, token: str) -> AdminToken | None:
        """The active named token ``token`` is, or None."""
        ...

    def for_digest(self, token_hash: str) -> AdminToken | None:
        """The active named token whose SHA-256 hex digest is ``token_hash``, or None."""
        ...


def _unauthorized(detail: str) -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(title="Unauthorized", description=detail, challenges=["Bearer"])


class BearerAuth:
    """Resolves a request's bearer token to a ``Principal``.

    Args:
        tenants: Resolves tenant API keys.
        admin_token: The token that sees every tenant; None disables admin access.
    """

    def __init__(
        self,
        tenants: TenantDirectory,
        admin_token: str | None,
        admins: AdminTokens | None = None,
    ) -> None:
        self._tenants = tenants
        self._admin_token = admin_token
        self._admins = admins

    def authenticate(self, req: falcon.Request) -> Principal:
        """Return the caller of ``req``.

        Raises:
            falcon.HTTPUnauthorized: The header is missing, not a bearer token, or the
                token matches neither the admin token nor a tenant key.
        """
        header = req.get_header("Authorization")
        if not header:
            raise _unauthorized("send Authorization: Bearer <api key>")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header must be 'Bearer <api key>'")
        principal = self.resolve(token)
        if principal is None:
            raise _unauthorized("the API key is not valid")
        return principal

    def resolve(self, token: str) -> Principal | None:
        """The caller ``token`` makes (an admin, a viewer or a tenant), or None."""
        if self._admin_token is not None and hmac.compare_digest(
            token.encode(), self._admin_token.encode()
        ):
            return Principal(tenant_id=None, admin=BOOTSTRAP_ADMIN, role="admin")
        if self._admins is not None and token.startswith(TOKEN_PREFIX):
            named = self._admins.for_token(token)
            if named is not None:
                return Principal(tenant_id=None, admin=named.name, role=named.role)
        tenant = self._tenants.tenant_for_key(token)
        return None if tenant is None else Principal(tenant_id=tenant.id)

    def admin_still_valid(self, token_hash: str) -> bool:
        """Whether the admin token with this SHA-256 hex digest still works (not revoked)."""
        if self._admin_token is not None and hmac.compare_digest(
            token_hash, hash_api_key(self._admin_token)
        ):
            return True
        return self._admins is not None and self._admins.for_digest(token_hash) is not None
