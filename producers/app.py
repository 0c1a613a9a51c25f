"""The Falcon application factory: routes, resources and central error handling.

``create_app(deps)`` does no I/O; every collaborator arrives in ``ApiDeps``, built by
the composition root (``producers.wsgi``) or by a test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import falcon

from infra.bus.publishing import Publisher
from infra.store.protocols import CallQueries, JobLedger, TenantDirectory
from producers.auth import BearerAuth
from producers.errors import install_error_handling
from producers.ports import ReadinessCheck, SimilarityIndex
from producers.resources.calls import CallResource, SimilarCallsResource
from producers.resources.health import Liveness, Readiness
from producers.resources.webhooks import CallEndedWebhook


@dataclass(frozen=True)
class ApiDeps:
    """Values and collaborators of the HTTP API.

    Attributes:
        max_body_bytes: Larger request bodies get 413.
        webhook_secret: The ElevenLabs HMAC secret; None makes the webhook answer 503.
        signature_tolerance_s: Largest accepted signature age (and future skew).
        admin_token: The bearer token that sees every tenant; None disables it.
        tenants: Tenants, agents and API keys.
        ledger: The job ledger (inbox).
        calls: The calls read side.
        publisher: Puts contracts on the bus.
        vectors: The vector index, for similar calls.
        checks: What ``/readyz`` probes.
        adapters: Adapter labels shown by ``/readyz``.
        clock: Current unix time (fixed in tests).
    """

    max_body_bytes: int
    webhook_secret: str | None
    signature_tolerance_s: float
    admin_token: str | None
    tenants: TenantDirectory
    ledger: JobLedger
    calls: CallQueries
    publisher: Publisher
    vectors: SimilarityIndex
    checks: Sequence[ReadinessCheck]
    adapters: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], float] = time.time


def create_app(deps: ApiDeps) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app: every route, with problem+json errors everywhere."""
    app = falcon.App()
    install_error_handling(app)
    auth = BearerAuth(deps.tenants, deps.admin_token)
    app.add_route("/healthz", Liveness())
    app.add_route("/readyz", Readiness(deps.checks, deps.adapters))
    app.add_route(
        "/api/webhooks/elevenlabs/call-ended",
        CallEndedWebhook(
            tenants=deps.tenants,
            ledger=deps.ledger,
            publisher=deps.publisher,
            secret=deps.webhook_secret,
            tolerance_s=deps.signature_tolerance_s,
            max_body_bytes=deps.max_body_bytes,
            clock=deps.clock,
        ),
    )
    app.add_route("/api/calls/{conversation_id}", CallResource(auth=auth, calls=deps.calls))
    app.add_route(
        "/api/calls/{conversation_id}/similar",
        SimilarCallsResource(auth=auth, calls=deps.calls, vectors=deps.vectors),
    )
    return app
