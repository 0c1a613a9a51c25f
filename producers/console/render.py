"""Rendering the console's pages: Jinja2 templates, autoescaped, with strict headers.

Every value a page shows (payloads, exception messages, tracebacks) came from outside
and is escaped by the template engine; undefined names fail loudly instead of
rendering empty. Pages carry a Content-Security-Policy that allows no script at all
and styles only from the console itself, are never cached, and may not be framed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import falcon
import jinja2

from infra.durations import human_duration
from infra.store.audit import MAX_REASON_CHARS

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: with it Chromium sends "Origin: null" on our own form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def utc(moment: datetime | str | None) -> str:
    """A time as ``2026-12-04 21:40:07 UTC`` (``-`` for none)."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(moment: datetime | str | None, now: datetime) -> str:
    """``3 min ago`` or ``in 3 min``, from ``now``."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    delta = (moment - now).total_seconds()
    return f"in {human_duration(delta)}" if delta >= 0 else f"{human_duration(-delta)} ago"


def pretty_json(value: Any) -> str:
    """A payload as indented JSON (what the edit form starts from)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


class Pages:
    """The console's templates.

    Args:
        clock: The current time (aware), for relative times.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("producers.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(utc=utc, duration=human_duration, pretty_json=pretty_json)
        self._env.globals["max_reason"] = MAX_REASON_CHARS

    def render(
        self, resp: falcon.Response, template: str, *, status: str = falcon.HTTP_200, **page: Any
    ) -> None:
        """Answer ``resp`` with ``template`` rendered from ``page``.

        Its strict headers (``SECURITY_HEADERS``) are added to every answer under
        ``/admin`` by ``producers.console.routes.ConsoleHeaders``, this one included.
        """
        now = self._clock()
        page.setdefault("operator", None)
        page.setdefault("notice", None)
        page.setdefault("refresh", None)
        body = self._env.get_template(template).render(
            now=now, ago=lambda moment: relative(moment, now), **page
        )
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.text = body
