"""The console's pages that only read: queues, dead letters, a job, review, audit.

Each resource checks who is asking (``ConsoleAuth``): without a session it sends the
browser to the login page and back; every page is open to admins and viewers alike
(the change buttons are only drawn for admins, and refused for viewers anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import falcon

from contracts.errors import TransientError
from contracts.fields import is_identifier
from infra.dlq import ACTORS, QUEUES, Selection, letter_document, since_moment, violations
from infra.queue_report import PIPELINES
from producers.console.auth import ConsoleError, Operator
from producers.console.deps import ConsoleDeps
from producers.payloads import is_storable
from producers.resources.admin import tenant_ids
from producers.resources.jobs import job_document

LIST_LIMIT = 200
"""Most dead letters one page lists."""

REVIEW_LIMIT = 100
"""Most rows of each kind the review page lists."""

_PIPELINE_OF = {queue: name for name, queues in PIPELINES.items() for queue in queues}
_IN_ORDER = {queue: i for i, queue in enumerate(q for qs in PIPELINES.values() for q in qs)}
"""Queues in pipeline order: a pipeline's steps one after the other, as they run."""


@contextmanager
def reachable() -> Iterator[None]:
    """Turn an unreachable store or broker into a 503 page that says so."""
    try:
        yield
    except TransientError as error:
        raise ConsoleError(
            falcon.HTTP_503, "Service Unavailable", f"{error}; try again in a moment"
        ) from error


def login_redirect(req: falcon.Request) -> falcon.HTTPSeeOther:
    """Send the browser to log in, then back to this page."""
    return falcon.HTTPSeeOther(f"/admin/login?next={quote(req.relative_uri, safe='')}")


def console_path(value: str | None, default: str) -> str:
    """``value`` if it is a path of this console (a safe place to redirect to)."""
    if not value or not value.isprintable() or "\\" in value:
        return default
    path = value.split("?", 1)[0]
    segments = path.split("/")[1:]
    if not path.startswith("/admin/") or any(s in ("", ".", "..") for s in segments[:-1]):
        return default
    return value


class ConsolePage:
    """What every page holds: the console's dependencies."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self._deps = deps

    def _operator(self, req: falcon.Request) -> Operator:
        operator = self._deps.auth.operator(req)
        if operator is None:
            raise login_redirect(req)
        return operator

    def _show(
        self,
        resp: falcon.Response,
        operator: Operator,
        template: str,
        *,
        status: str = falcon.HTTP_200,
        **page: Any,
    ) -> None:
        notice = self._deps.auth.notice(operator)
        self._deps.pages.render(
            resp, template, status=status, operator=operator, notice=notice, **page
        )


def _refresh(req: falcon.Request) -> int | None:
    raw = req.get_param("refresh")
    if raw is None or not (raw.isascii() and raw.isdigit()):
        return None
    return min(max(int(raw), 5), 300)


class QueuesPage(ConsolePage):
    """``GET /admin/queues``: the state of the platform on one page."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render the queues, pipelines, ticks and what needs review."""
        operator = self._operator(req)
        with reachable():
            report = self._deps.report.report()
            intake = self._deps.jobs.count_failed_at_intake()
            unknown = len(self._deps.calls.needing_review(limit=REVIEW_LIMIT + 1))
        for queue in report["queues"]:
            queue["pipeline"] = _PIPELINE_OF.get(queue["name"], "-")
        report["queues"].sort(key=lambda queue: _IN_ORDER.get(queue["name"], len(_IN_ORDER)))
        self._show(
            resp,
            operator,
            "queues.html",
            report=report,
            review={"intake": intake, "unknown": unknown, "cap": REVIEW_LIMIT},
            refresh=_refresh(req),
        )


class DeadLettersPage(ConsolePage):
    """``GET /admin/dead-letters``: the newest dead letters the filters select."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render the filters, the dead letters and the bulk replay and purge form."""
        operator = self._operator(req)
        filters = {
            name: (req.get_param(name) or "").strip()
            for name in ("queue", "actor", "error", "since", "tenant", "job")
        }
        problems, selection = self._selection(filters)
        letters: list[dict[str, Any]] = []
        if not problems:
            with reachable():
                found = self._deps.desk.find(selection, LIST_LIMIT)
            letters = [letter_document(letter, full=True) for letter in found]
        self._show(
            resp,
            operator,
            "dead_letters.html",
            status=falcon.HTTP_422 if problems else falcon.HTTP_200,
            filters=filters,
            problems=problems,
            letters=letters,
            queues=QUEUES,
            actors=ACTORS,
            limit=LIST_LIMIT,
            back=req.relative_uri,
        )

    def _selection(self, filters: dict[str, str]) -> tuple[list[str], Selection]:
        problems: list[str] = []
        for name, known in (("queue", QUEUES), ("actor", ACTORS)):
            if filters[name] and filters[name] not in known:
                problems.append(f"unknown {name} {filters[name]!r}; known: {', '.join(known)}")
        for name in ("error", "tenant", "job"):
            if filters[name] and not is_storable(filters[name]):
                problems.append(f"the {name} filter is not text the store can hold")
        since = None
        if filters["since"]:
            try:
                since = since_moment(filters["since"], datetime.now(UTC))
            except ValueError:
                problems.append("since: an ISO time (UTC unless it has an offset) or 30m, 2h, 1d")
        if problems:
            return problems, Selection()
        with reachable():
            tenants = tenant_ids(self._deps.tenants, filters["tenant"] or None)
        return problems, Selection(
            queue=filters["queue"] or None,
            actor=filters["actor"] or None,
            error=filters["error"] or None,
            since=since,
            tenant_ids=tenants,
            job_id=filters["job"] or None,
        )


class DeadLetterPage(ConsolePage):
    """``GET /admin/dead-letters/{message_id}``: one dead letter, with its actions."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        """Render it in full, with its audit trail (404 page when it is gone)."""
        operator = self._operator(req)
        self.show(resp, operator, message_id)

    def show(
        self,
        resp: falcon.Response,
        operator: Operator,
        message_id: str,
        *,
        draft: str | None = None,
        rejected: list[str] | None = None,
    ) -> None:
        """Render the letter; ``draft`` and ``rejected``: an edit that was refused."""
        with reachable():
            letter = self._deps.desk.get(message_id) if is_storable(message_id) else None
            trail = self._deps.desk.entries(target=message_id, limit=50) if letter else []
        if letter is None:
            raise ConsoleError(
                falcon.HTTP_404,
                "Dead letter not found",
                f"no dead letter {message_id}: replayed or purged already? "
                "The audit log says what happened to it.",
            )
        self._show(
            resp,
            operator,
            "dead_letter.html",
            status=falcon.HTTP_422 if rejected else falcon.HTTP_200,
            letter=letter_document(letter, full=True),
            problems=violations(letter, letter.payload),
            trail=trail,
            draft=draft,
            rejected=rejected or [],
        )


class JobPage(ConsolePage):
    """``GET /admin/jobs/{job_id}`` (and ``/admin/jobs?id=``): a job step by step."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str | None = None) -> None:
        """Render the job, its steps and its dead letters (404 page when unknown)."""
        operator = self._operator(req)
        if job_id is None:
            wanted = (req.get_param("id") or "").strip()
            raise falcon.HTTPSeeOther(f"/admin/jobs/{quote(wanted, safe='')}")
        if not is_identifier(job_id):
            raise ConsoleError(falcon.HTTP_404, "Job not found", f"no job {job_id}: not a job id")
        with reachable():
            view = (
                self._deps.jobs.job_view(job_id, tenant_id=None) if is_identifier(job_id) else None
            )
            letters = self._deps.desk.find(Selection(job_id=job_id), LIST_LIMIT) if view else []
        if view is None:
            raise ConsoleError(falcon.HTTP_404, "Job not found", f"no job {job_id}")
        self._show(
            resp,
            operator,
            "job.html",
            job=job_document(view).media(),
            letters=[letter_document(letter, full=False) for letter in letters],
            back=f"/admin/jobs/{quote(job_id, safe='')}",
        )


class ReviewPage(ConsolePage):
    """``GET /admin/review``: what needs a person besides dead letters."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render the jobs failed at intake and the calls of unknown outcome."""
        operator = self._operator(req)
        with reachable():
            intake = self._deps.jobs.failed_at_intake(limit=REVIEW_LIMIT)
            unknown = self._deps.calls.needing_review(limit=REVIEW_LIMIT)
        self._show(resp, operator, "review.html", intake=intake, unknown=unknown)


class AuditPage(ConsolePage):
    """``GET /admin/audit?action=&target=``: who changed what, newest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render the newest audit entries."""
        operator = self._operator(req)
        action = (req.get_param("action") or "").strip() or None
        target = (req.get_param("target") or "").strip() or None
        storable = all(value is None or is_storable(value) for value in (action, target))
        with reachable():
            entries = (
                self._deps.desk.entries(target=target, action=action, limit=LIST_LIMIT)
                if storable
                else []
            )
        self._show(
            resp, operator, "audit.html", entries=entries, action=action or "", target=target or ""
        )
