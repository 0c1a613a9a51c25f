"""Counting the API's answers and the webhooks it receives (``infra.metrics.api``).

``RequestMetrics`` is a Falcon middleware: every answer is counted by route template,
method and status, and timed; the requests being answered are a live gauge. A webhook
resource names its sender first thing (``webhook_received``) and, when it answers
without an error, its outcome (``webhook_settled``); the middleware counts the webhook
once the answer is known. An error answer is a rejection: for the reason the resource
gave, else the one its status says (``infra.metrics.api.rejection_reason``: 401
signature, 413 too large, 503 unavailable, other 5xx error, other 4xx invalid). So the
responders keep raising and never catch for the sake of a count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import falcon

from infra.metrics.api import ApiMetrics, RejectionReason, WebhookOutcome, rejection_reason


def webhook_received(req: falcon.Request, source: str) -> None:
    """Count this request as a webhook from ``source`` (a fixed name, e.g. ``elevenlabs``)."""
    req.context.webhook_source = source


def webhook_settled(
    req: falcon.Request, outcome: WebhookOutcome, reason: RejectionReason | None = None
) -> None:
    """The webhook's outcome; a reason for a rejection the status alone would not tell."""
    req.context.webhook_outcome = outcome
    req.context.webhook_reason = reason


class RequestMetrics:
    """The Falcon middleware that counts and times every answer (see the module docstring).

    Args:
        metrics: Where the counts go.
        timer: Monotonic seconds.
    """

    def __init__(self, metrics: ApiMetrics, timer: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._timer = timer

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Note when the request reached the app."""
        req.context.metrics_started = self._timer()
        self._metrics.in_progress.inc()

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,  # noqa: ARG002 (falcon's signature)
        req_succeeded: bool,  # noqa: ARG002
    ) -> None:
        """Count the answer, and the webhook it answered."""
        context = req.context
        started = context.get("metrics_started")
        if started is None:  # our process_request never ran
            return
        self._metrics.in_progress.dec()
        status = resp.status_code
        self._metrics.answered(req.uri_template, req.method, status, self._timer() - started)
        source = context.get("webhook_source")
        if source is None:
            return
        if status >= 400:
            reason = context.get("webhook_reason") or rejection_reason(status)
            self._metrics.webhook(source, "rejected", reason)
        else:
            self._metrics.webhook(
                source, context.get("webhook_outcome") or "accepted", context.get("webhook_reason")
            )
