"""The console's routes, its stylesheet and its error pages, added to the API's app."""

from __future__ import annotations

from importlib import resources

import falcon

from producers.console.actions import BulkAction, EditAction, LoginPage, LogoutAction
from producers.console.auth import ConsoleError
from producers.console.deps import ConsoleDeps
from producers.console.pages import (
    AuditPage,
    DeadLetterPage,
    DeadLettersPage,
    JobPage,
    QueuesPage,
    ReviewPage,
)
from producers.console.render import SECURITY_HEADERS

STYLESHEET = "/admin/static/console.css"


class Stylesheet:
    """``GET /admin/static/console.css``: the console's only asset, read once."""

    def __init__(self) -> None:
        self._css = resources.files("producers.console").joinpath("static/console.css").read_text()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the stylesheet (cacheable for an hour)."""
        del req
        resp.content_type = "text/css; charset=utf-8"
        resp.cache_control = ["public", "max-age=3600"]
        resp.text = self._css


class Home:
    """``GET /admin``: to the queues."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Redirect to ``/admin/queues``."""
        del req, resp
        raise falcon.HTTPSeeOther("/admin/queues")


class ConsoleHeaders:
    """The Falcon middleware that gives every answer under ``/admin`` the console's headers.

    The one place they are set (``SECURITY_HEADERS``): the rendered pages, and what no
    page renders, the redirects to the login, an unknown path's 404, a 405, a 500.
    """

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: object,  # noqa: ARG002 (falcon's signature)
        req_succeeded: bool,  # noqa: ARG002
    ) -> None:
        """Add the headers to an answer of the console's paths (not its cacheable stylesheet)."""
        if req.path == STYLESHEET:
            return
        if req.path == "/admin" or req.path.startswith("/admin/"):
            resp.set_headers(SECURITY_HEADERS)


def add_console_routes(app: falcon.App[falcon.Request, falcon.Response], deps: ConsoleDeps) -> None:
    """Add the console under ``/admin`` (see ``producers.console``)."""

    def error_page(
        req: falcon.Request, resp: falcon.Response, error: ConsoleError, params: object
    ) -> None:
        # No operator lookup here: the error may be that the store is unreachable.
        del req, params
        deps.pages.render(
            resp, "error.html", status=error.status, title=error.title, detail=error.detail
        )

    app.add_error_handler(ConsoleError, error_page)
    app.add_route("/admin", Home())
    app.add_route(STYLESHEET, Stylesheet())
    app.add_route("/admin/login", LoginPage(deps))
    app.add_route("/admin/logout", LogoutAction(deps))
    app.add_route("/admin/queues", QueuesPage(deps))
    app.add_route("/admin/dead-letters", DeadLettersPage(deps))
    app.add_route("/admin/dead-letters/replay", BulkAction(deps, verb="replayed"))
    app.add_route("/admin/dead-letters/purge", BulkAction(deps, verb="purged"))
    app.add_route("/admin/dead-letters/{message_id}", DeadLetterPage(deps))
    app.add_route("/admin/dead-letters/{message_id}/payload", EditAction(deps))
    jobs = JobPage(deps)
    app.add_route("/admin/jobs", jobs)
    app.add_route("/admin/jobs/{job_id}", jobs)
    app.add_route("/admin/review", ReviewPage(deps))
    app.add_route("/admin/audit", AuditPage(deps))
