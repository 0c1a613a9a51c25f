"""Bearer-token authentication of the read API.

``Authorization: Bearer <key>``: the admin token sees every tenant; a tenant's API key
sees only that tenant. Anything else is a 401 problem carrying ``WWW-Authenticate:
Bearer``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import falcon

from infra.store.protocols import TenantDirectory


@dataclass(frozen=True)
class Principal:
    """Who is calling.

    Attributes:
        tenant_id: The caller's tenant, or None for the admin (who sees every tenant).
    """

    tenant_id: str | None


def _unauthorized(detail: str) -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(title="Unauthorized", description=detail, challenges=["Bearer"])


class BearerAuth:
    """Resolves a request's bearer token to a ``Principal``.

    Args:
        tenants: Resolves tenant API keys.
        admin_token: The token that sees every tenant; None disables admin access.
    """

    def __init__(self, tenants: TenantDirectory, admin_token: str | None) -> None:
        self._tenants = tenants
        self._admin_token = admin_token

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
        if self._admin_token is not None and hmac.compare_digest(
            token.encode(), self._admin_token.encode()
        ):
            return Principal(tenant_id=None)
        tenant = self._tenants.tenant_for_key(token)
        if tenant is None:
            raise _unauthorized("the API key is not valid")
        return Principal(tenant_id=tenant.id)
