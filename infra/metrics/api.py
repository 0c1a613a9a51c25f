"""What the API's workers count: HTTP requests and the webhooks they receive.

Every label has a bounded set of values: ``route`` is the matched route's template
(``unmatched`` when none matched), ``method`` one of ``METHODS`` (else ``other``),
``status`` the answer's code; a webhook's ``source`` names its sender, its ``outcome``
is one of ``WEBHOOK_OUTCOMES`` and ``reason`` (only on ``rejected``) one of
``REJECTION_REASONS``. No user, tenant, call or job ever becomes a label.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; anything else a client sends is ``other``."""

UNMATCHED = "unmatched"
"""The ``route`` of a request no route matched."""

WebhookOutcome = Literal["accepted", "duplicate", "ignored", "rejected"]
WEBHOOK_OUTCOMES: Final = ("accepted", "duplicate", "ignored", "rejected")
"""accepted: a job (or a status change) came of it; duplicate: an earlier delivery's
did; ignored: valid but nothing to do (an event type we do not process, a status the
call is already past); rejected: refused, for one of ``REJECTION_REASONS``."""

RejectionReason = Literal[
    "signature", "too_large", "invalid", "unknown_agent", "unknown_call", "unavailable", "error"
]
REJECTION_REASONS: Final = (
    "signature",
    "too_large",
    "invalid",
    "unknown_agent",
    "unknown_call",
    "unavailable",
    "error",
)

HTTP_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Intake answers in milliseconds; 30 s is gunicorn's timeout."""


class ApiMetrics:
    """The API's metrics; in production they count in the role's multiprocess files.

    Args:
        registry: Where to register them; None (the API's workers) registers them
            nowhere: gunicorn's master serves the files (``infra.metrics.multiprocess``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.requests = Counter(
            "switchboard_http_requests_total",
            "HTTP requests answered by the API, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "switchboard_http_request_duration_seconds",
            "Time from a request reaching the app to its answer, by route template and method.",
            ["route", "method"],
            buckets=HTTP_BUCKETS_S,
            registry=registry,
        )
        self.in_progress = Gauge(
            "switchboard_http_requests_in_progress",
            "Requests the API's workers are answering now (live workers only).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.webhooks = Counter(
            "switchboard_webhooks_received_total",
            "Webhooks received, by sender and outcome; a rejection by reason.",
            ["source", "outcome", "reason"],
            registry=registry,
        )

    def answered(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        shown_route = route or UNMATCHED
        shown_method = method if method in METHODS else "other"
        self.requests.labels(shown_route, shown_method, str(status)).inc()
        self.request_duration.labels(shown_route, shown_method).observe(seconds)

    def webhook(
        self, source: str, outcome: WebhookOutcome, reason: RejectionReason | None = None
    ) -> None:
        """Count one webhook; ``reason`` is kept for a rejection only."""
        self.webhooks.labels(source, outcome, reason if outcome == "rejected" else "").inc()


def rejection_reason(status: int) -> RejectionReason:
    """Why a webhook answered with an error status was rejected, from that status."""
    if status == 401:
        return "signature"
    if status == 413:
        return "too_large"
    if status == 503:
        return "unavailable"
    if status >= 500:
        return "error"
    return "invalid"
