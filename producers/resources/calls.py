"""The calls read API: one call's progress and results, and similar calls of its tenant.

``GET /api/calls/{conversation_id}`` and ``GET /api/calls/{conversation_id}/similar?k=5``.
A tenant's key sees only its own calls: another tenant's call is a 404, exactly like an
unknown one, so ids do not leak across tenants. Conversation ids are the voice
platform's, so two tenants may share one: the admin's read then answers 409 listing
the tenants, and ``?tenant=NAME`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass

import falcon

from contracts.fields import is_identifier
from contracts.values import summary_vector_id, tenant_namespace
from infra.store.protocols import CallQueries, TenantDirectory
from infra.store.records import CallView
from producers.auth import BearerAuth, Principal
from producers.errors import ProblemError, unprocessable
from producers.operations import TENANT, operation, returns
from producers.payloads import is_storable
from producers.ports import SimilarityIndex
from producers.resources.jobs import steps_document
from producers.schemas.calls import (
    DEFAULT_K,
    MAX_K,
    Call,
    Callback,
    SimilarCall,
    SimilarCalls,
    SimilarQuery,
    TenantChoice,
)

_FIND_PROBLEMS = {
    404: "no such call, or another tenant's (or no tenant has the `tenant` named)",
    409: "for an admin, several tenants have a call with this id: add `?tenant=NAME`",
}


def _not_found(conversation_id: str) -> ProblemError:
    return ProblemError(
        falcon.HTTP_404, title="Call not found", detail=f"no call {conversation_id}"
    )


@dataclass(frozen=True)
class CallFinder:
    """Finds the one call a request means.

    Attributes:
        calls: The calls read side.
        tenants: Resolves ``?tenant=NAME`` (admin only).
    """

    calls: CallQueries
    tenants: TenantDirectory

    def find(self, req: falcon.Request, conversation_id: str, principal: Principal) -> CallView:
        """The call, scoped to the caller's tenant or the admin's ``?tenant=``.

        Raises:
            ProblemError: 404 when there is none; 409 when, for the admin, several
                tenants have a call with this id and no ``?tenant=`` chose one.
        """
        if not is_identifier(conversation_id):
            raise _not_found(conversation_id)
        tenant_id = principal.tenant_id
        name = req.get_param("tenant")
        if tenant_id is None and name is not None:
            tenant = self.tenants.tenant_by_name(name) if is_storable(name) else None
            if tenant is None:
                raise _not_found(conversation_id)
            tenant_id = tenant.id
        views = self.calls.find_calls(conversation_id, tenant_id=tenant_id)
        if not views:
            raise _not_found(conversation_id)
        if len(views) > 1:
            names = [view.tenant_name for view in views]
            raise ProblemError(
                falcon.HTTP_409,
                title="Several tenants have this call",
                detail=f"tenants {', '.join(names)} each have a call {conversation_id}: "
                "add ?tenant=NAME",
                extensions={"tenants": names},
            )
        return views[0]


def call_document(view: CallView) -> Call:
    """The answer of one call."""
    analysis = view.analysis
    callback = view.callback
    return Call(
        conversation_id=view.conversation_id,
        job_id=view.job_id,
        tenant=view.tenant_name,
        tenant_id=view.tenant_id,
        kind=view.kind,
        status=view.status,
        steps=steps_document(view.steps),
        summary=analysis.summary if analysis else None,
        topics=list(analysis.topics) if analysis else [],
        sentiment=analysis.sentiment if analysis else None,
        duration_secs=view.duration_secs,
        callback=(
            Callback(
                due_at=callback.due_at.isoformat(),
                reason=callback.reason,
                status=callback.status,
            )
            if callback
            else None
        ),
        health_answers=list(view.health_answers),
    )


class CallResource:
    """``GET /api/calls/{conversation_id}``."""

    def __init__(self, *, auth: BearerAuth, finder: CallFinder) -> None:
        self._auth = auth
        self._finder = finder

    @operation(
        "getCall",
        summary="A call, step by step, and its results",
        tag="calls",
        access=TENANT,
        query=TenantChoice,
        answers=[returns(200, "The call.", Call)],
        problems=_FIND_PROBLEMS,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        """Answer the call's status, steps and results (404 if unknown or not yours)."""
        principal = self._auth.authenticate(req)
        resp.media = call_document(self._finder.find(req, conversation_id, principal)).media()


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

    def __init__(self, *, auth: BearerAuth, finder: CallFinder, vectors: SimilarityIndex) -> None:
        self._auth = auth
        self._finder = finder
        self._vectors = vectors

    @operation(
        "getSimilarCalls",
        summary="The tenant's calls most similar to one",
        tag="calls",
        access=TENANT,
        query=SimilarQuery,
        answers=[returns(200, "The similar calls.", SimilarCalls)],
        problems={
            **_FIND_PROBLEMS,
            409: f"{_FIND_PROBLEMS[409]}; or the call's summary is not indexed yet (retry later)",
            422: f"`k` is not an integer from 1 to {MAX_K}; or the call is a health-check "
            "call, which is never indexed (`errors` names `conversation_id`): final, do not "
            "retry",
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        """Answer up to ``k`` calls of the same tenant, most similar first.

        409 while the call's summary is not indexed yet: it will be, retry later. A
        health-check call is never indexed (its pipeline saves answers, not a summary),
        so asking for its similar calls is a 422 naming ``conversation_id``, which no
        retry changes.
        """
        principal = self._auth.authenticate(req)
        k = _parse_k(req)
        view = self._finder.find(req, conversation_id, principal)
        if view.kind == "health_check":
            raise unprocessable(
                "is a health-check call: health-check calls are not indexed, "
                "so nothing is similar to them",
                field="conversation_id",
            )
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
            for v in self._finder.calls.call_views([c for c, _ in others], tenant_id=view.tenant_id)
        }
        resp.media = SimilarCalls(
            conversation_id=conversation_id,
            similar=[_similar_document(c, score, views.get(c)) for c, score in others],
        ).media()


def _similar_document(conversation_id: str, score: float, view: CallView | None) -> SimilarCall:
    analysis = view.analysis if view is not None else None
    return SimilarCall(
        conversation_id=conversation_id,
        score=score,
        summary=analysis.summary if analysis else None,
        topics=list(analysis.topics) if analysis else [],
    )
