"""The calls read API: one call's progress and results, and similar calls of its tenant.

``GET /api/calls/{conversation_id}`` and ``GET /api/calls/{conversation_id}/similar?k=5``.
A tenant's key sees only its own calls: another tenant's call is a 404, exactly like an
unknown one, so ids do not leak across tenants.
"""

from __future__ import annotations

from typing import Any

import falcon

from contracts.values import summary_vector_id, tenant_namespace
from infra.store.protocols import CallQueries
from infra.store.records import CallView
from producers.auth import BearerAuth, Principal
from producers.errors import ProblemError, unprocessable
from producers.ports import SimilarityIndex

MAX_K = 50
DEFAULT_K = 5


def _find_call(calls: CallQueries, conversation_id: str, principal: Principal) -> CallView:
    view = calls.call_view(conversation_id, tenant_id=principal.tenant_id)
    if view is None:
        raise ProblemError(
            falcon.HTTP_404, title="Call not found", detail=f"no call {conversation_id}"
        )
    return view


def call_document(view: CallView) -> dict[str, Any]:
    """The JSON document of one call."""
    analysis = view.analysis
    callback = view.callback
    return {
        "conversation_id": view.conversation_id,
        "job_id": view.job_id,
        "tenant": view.tenant_name,
        "tenant_id": view.tenant_id,
        "kind": view.kind,
        "status": view.status,
        "steps": [
            {"name": s.name, "status": s.status, "attempts": s.attempts, "error": s.error}
            for s in view.steps
        ],
        "summary": analysis.summary if analysis else None,
        "topics": list(analysis.topics) if analysis else [],
        "sentiment": analysis.sentiment if analysis else None,
        "duration_secs": view.duration_secs,
        "callback": (
            {
                "due_at": callback.due_at.isoformat(),
                "reason": callback.reason,
                "status": callback.status,
            }
            if callback
            else None
        ),
        "health_answers": [answer.model_dump(mode="json") for answer in view.health_answers],
    }


class CallResource:
    """``GET /api/calls/{conversation_id}``."""

    def __init__(self, *, auth: BearerAuth, calls: CallQueries) -> None:
        self._auth = auth
        self._calls = calls

    def on_get(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        """Answer the call's status, steps and results (404 if unknown or not yours)."""
        principal = self._auth.authenticate(req)
        resp.media = call_document(_find_call(self._calls, conversation_id, principal))


def _parse_k(req: falcon.Request) -> int:
    raw = req.get_param("k")
    if raw is None:
        return DEFAULT_K
    message = f"k must be an integer from 1 to {MAX_K}"
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_K:
        raise unprocessable(message, field="k")
    return int(digits)


class SimilarCallsResource:
    """``GET /api/calls/{conversation_id}/similar?k=5``: nearest calls by summary."""

    def __init__(self, *, auth: BearerAuth, calls: CallQueries, vectors: SimilarityIndex) -> None:
        self._auth = auth
        self._calls = calls
        self._vectors = vectors

    def on_get(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        """Answer up to ``k`` calls of the same tenant, most similar first.

        409 while the call's summary is not indexed yet.
        """
        principal = self._auth.authenticate(req)
        k = _parse_k(req)
        view = _find_call(self._calls, conversation_id, principal)
        namespace = tenant_namespace(view.tenant_id)
        found = self._vectors.fetch(namespace, [summary_vector_id(conversation_id)])
        if not found:
            raise ProblemError(
                falcon.HTTP_409,
                title="Call not indexed yet",
                detail=f"call {conversation_id} has no summary vector yet; retry later",
            )
        matches = self._vectors.query(namespace, found[0].values, top_k=k + 1, kind="summary")
        others = [
            (str(m.metadata.get("conversation_id", "")), m.score)
            for m in matches
            if m.metadata.get("conversation_id") != conversation_id
        ][:k]
        views = {
            v.conversation_id: v
            for v in self._calls.call_views([c for c, _ in others], tenant_id=view.tenant_id)
        }
        resp.media = {
            "conversation_id": conversation_id,
            "similar": [_similar_document(c, score, views.get(c)) for c, score in others],
        }


def _similar_document(conversation_id: str, score: float, view: CallView | None) -> dict[str, Any]:
    analysis = view.analysis if view is not None else None
    return {
        "conversation_id": conversation_id,
        "score": score,
        "summary": analysis.summary if analysis else None,
        "topics": list(analysis.topics) if analysis else [],
    }
