"""The Falcon application factory: routes, resources and central error handling.

``create_app(deps)`` does no I/O; every collaborator arrives in ``ApiDeps``, built by
the composition root (``producers.wsgi``) or by a test. The API's routes are added
through ``DocumentedRoutes``, which serves their OpenAPI document at ``/openapi.json``;
the console's HTML pages are added beside them, outside the document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import falcon

from infra.health import HealthMonitor
from infra.intake import Intake
from infra.metrics.api import ApiMetrics
from infra.store.protocols import (
    CallQueries,
    JobLedger,
    JobQueries,
    OutboundCallBook,
    TenantDirectory,
    UserDirectory,
)
from producers.auth import AdminTokens, BearerAuth
from producers.console.auth import ConsoleAuth, ConsoleSessions
from producers.console.deps import ConsoleDeps
from producers.console.render import Pages
from producers.console.routes import ConsoleHeaders, add_console_routes
from producers.errors import install_error_handling
from producers.openapi import DocumentedRoutes
from producers.ports import SimilarityIndex
from producers.private import PrivateAnswers
from producers.request_metrics import RequestMetrics
from producers.resources.admin import (
    AuditResource,
    DeadLetterDeskPort,
    DeadLetterResource,
    DeadLettersResource,
    PayloadResource,
    PurgeResource,
    ReplayResource,
)
from producers.resources.calls import CallFinder, CallResource, SimilarCallsResource
from producers.resources.erasure import (
    CallErasureResource,
    ErasurePort,
    ErasureRequest,
    UserErasure,
)
from producers.resources.health import Liveness, Readiness
from producers.resources.jobs import JobResource
from producers.resources.queue import QueueReport, QueueStatusResource, QueueTriggerResource
from producers.resources.telephony import TelephonyWebhook
from producers.resources.users import (
    CallPreferencesResource,
    UserCallsResource,
    UserResource,
    UserScope,
    UsersResource,
)
from producers.resources.webhooks import CallEndedWebhook


@dataclass(frozen=True)
class ApiDeps:
    """Values and collaborators of the HTTP API.

    Attributes:
        max_body_bytes: Larger request bodies get 413.
        max_json_depth: Deeper JSON bodies get 422.
        webhook_secret: The ElevenLabs HMAC secret; None makes the webhook answer 503.
        signature_tolerance_s: Largest accepted signature age (and future skew).
        admin_token: The bootstrap admin's bearer token; None disables it.
        admins: The named admin and viewer tokens.
        tenants: Tenants, agents and API keys.
        ledger: The job ledger (inbox), for rejected requests.
        intake: Records and dispatches accepted requests.
        jobs: The jobs read side.
        calls: The calls read side.
        vectors: The vector index, for similar calls.
        health: Answers ``/readyz``.
        users: Users called every day.
        outbound: The call book (telephony status webhooks, users' calls).
        telephony_secret: The telephony webhooks' HMAC secret; None answers 503.
        telephony_tolerance_s: Largest age (and future skew) of a timestamped signature.
        queue_report: Builds ``GET /api/queue/status``.
        trigger_every_s: ``POST /api/queue/trigger`` emits at most one tick per this.
        desk: Dead letters and the audit log, for ``/api/admin/…`` and the console.
        eraser: Forgets calls and users on request (``DELETE`` routes).
        sessions: The console's logins.
        console_session_s: How long a console login lasts.
        clock: Current unix time (fixed in tests).
        metrics: Counts the answers and the webhooks (registered nowhere by default:
            in production they count in the multiprocess files gunicorn's master serves).
    """

    max_body_bytes: int
    max_json_depth: int
    webhook_secret: str | None
    signature_tolerance_s: float
    admin_token: str | None
    admins: AdminTokens
    tenants: TenantDirectory
    ledger: JobLedger
    intake: Intake
    jobs: JobQueries
    calls: CallQueries
    vectors: SimilarityIndex
    health: HealthMonitor
    users: UserDirectory
    outbound: OutboundCallBook
    telephony_secret: str | None
    telephony_tolerance_s: float
    queue_report: QueueReport
    trigger_every_s: int
    desk: DeadLetterDeskPort
    eraser: ErasurePort
    sessions: ConsoleSessions
    console_session_s: float
    clock: Callable[[], float] = time.time
    metrics: ApiMetrics = field(default_factory=ApiMetrics)


def create_app(deps: ApiDeps) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app: every route, problem+json errors everywhere, every answer counted.

    Answers that carry people's data (``/api/admin``, a user's erasure) are marked never
    to be cached or sniffed (``producers.private``).
    """
    app = falcon.App(middleware=(RequestMetrics(deps.metrics), PrivateAnswers(), ConsoleHeaders()))
    install_error_handling(app)
    routes = DocumentedRoutes(app)
    auth = BearerAuth(deps.tenants, deps.admin_token, deps.admins)
    finder = CallFinder(deps.calls, deps.tenants)
    routes.add("/healthz", Liveness())
    routes.add("/readyz", Readiness(deps.health))
    routes.add(
        "/api/webhooks/elevenlabs/call-ended",
        CallEndedWebhook(
            tenants=deps.tenants,
            intake=deps.intake,
            rejections=deps.ledger,
            secret=deps.webhook_secret,
            tolerance_s=deps.signature_tolerance_s,
            max_body_bytes=deps.max_body_bytes,
            max_json_depth=deps.max_json_depth,
            clock=deps.clock,
        ),
    )
    routes.add("/api/jobs/{job_id}", JobResource(auth=auth, jobs=deps.jobs))
    routes.add("/api/calls/{conversation_id}", CallResource(auth=auth, finder=finder))
    routes.add(
        "/api/calls/{conversation_id}/similar",
        SimilarCallsResource(auth=auth, finder=finder, vectors=deps.vectors),
    )
    routes.add(
        "/api/webhooks/callkaro",
        TelephonyWebhook(
            book=deps.outbound,
            secret=deps.telephony_secret,
            tolerance_s=deps.telephony_tolerance_s,
            max_body_bytes=deps.max_body_bytes,
            max_json_depth=deps.max_json_depth,
            clock=deps.clock,
        ),
    )
    routes.add("/api/queue/status", QueueStatusResource(auth=auth, reporter=deps.queue_report))
    routes.add(
        "/api/queue/trigger",
        QueueTriggerResource(
            auth=auth, intake=deps.intake, every_s=deps.trigger_every_s, clock=deps.clock
        ),
    )
    users = UserScope(deps.users, deps.tenants)
    erasure = ErasureRequest(
        auth=auth, max_body_bytes=deps.max_body_bytes, max_json_depth=deps.max_json_depth
    )
    routes.add(
        "/api/users",
        UsersResource(
            auth=auth,
            scope=users,
            max_body_bytes=deps.max_body_bytes,
            max_json_depth=deps.max_json_depth,
        ),
    )
    routes.add(
        "/api/users/{user_id}",
        UserResource(
            auth=auth, scope=users, erasure=UserErasure(request=erasure, eraser=deps.eraser)
        ),
    )
    routes.add(
        "/api/admin/calls/{conversation_id}",
        CallErasureResource(request=erasure, eraser=deps.eraser, tenants=deps.tenants),
    )
    routes.add(
        "/api/users/{user_id}/call-preferences",
        CallPreferencesResource(
            auth=auth,
            scope=users,
            max_body_bytes=deps.max_body_bytes,
            max_json_depth=deps.max_json_depth,
        ),
    )
    routes.add(
        "/api/users/{user_id}/calls",
        UserCallsResource(auth=auth, scope=users, outbound=deps.outbound),
    )
    _add_admin_routes(routes, deps, auth)
    add_console_routes(
        app,
        ConsoleDeps(
            auth=ConsoleAuth(auth, deps.sessions, timedelta(seconds=deps.console_session_s)),
            pages=Pages(lambda: datetime.fromtimestamp(deps.clock(), tz=UTC)),
            report=deps.queue_report,
            desk=deps.desk,
            jobs=deps.jobs,
            calls=deps.outbound,
            tenants=deps.tenants,
            max_body_bytes=deps.max_body_bytes,
            max_json_depth=deps.max_json_depth,
        ),
    )
    routes.publish()
    return app


def _add_admin_routes(routes: DocumentedRoutes, deps: ApiDeps, auth: BearerAuth) -> None:
    """The dead-letter admin API (``producers.resources.admin``)."""
    desk = deps.desk
    bounds = {"max_body_bytes": deps.max_body_bytes, "max_json_depth": deps.max_json_depth}
    letters = "/api/admin/dead-letters"
    routes.add(letters, DeadLettersResource(auth=auth, desk=desk, tenants=deps.tenants))
    routes.add(f"{letters}/{{message_id}}", DeadLetterResource(auth=auth, desk=desk))
    routes.add(f"{letters}/{{message_id}}/payload", PayloadResource(auth=auth, desk=desk, **bounds))
    routes.add(f"{letters}/{{message_id}}/replay", ReplayResource(auth=auth, desk=desk, **bounds))
    routes.add(f"{letters}/{{message_id}}/purge", PurgeResource(auth=auth, desk=desk, **bounds))
    routes.add("/api/admin/audit", AuditResource(auth=auth, desk=desk))
