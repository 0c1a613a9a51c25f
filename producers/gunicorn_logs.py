"""gunicorn's own log lines through Switchboard's logging (the config's ``logger_class``).

gunicorn gives its two loggers, ``gunicorn.error`` (the master's and the workers' lines)
and ``gunicorn.access`` (one line per request), handlers and formats of their own: with
JSON logs on they would still print plain text. ``GunicornLogger`` configures
``infra.logs`` in the master (each worker configures it again in ``application()``),
sends both loggers to the root handler at the root's level, and logs each request as
one structured event: ``method``, ``path`` (no query string: it may carry tokens),
``status``, ``duration_ms``, ``remote_addr``, ``bytes`` and ``user_agent``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from infra.logs import configure_logging, get_logger
from infra.settings import load_settings

_access = get_logger("gunicorn.access")


class GunicornLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's logger, writing through the root handler ``infra.logs`` configures."""

    def setup(self, cfg: Any) -> None:
        """Keep gunicorn's state (which logs are on), drop its handlers and formats."""
        super().setup(cfg)
        # The master is a process root of its own: it reads the settings like the others.
        configure_logging(load_settings(), process="api")
        for log in (self.error_log, self.access_log):
            log.handlers.clear()
            log.propagate = True
            log.setLevel(logging.NOTSET)

    def access(
        self, resp: Any, _req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> None:
        """Log one request as a structured event."""
        if not self.access_log_enabled:
            return
        _access.info(
            "request",
            method=environ.get("REQUEST_METHOD"),
            path=environ.get("PATH_INFO"),
            status=status_code(getattr(resp, "status", None)),
            duration_ms=round(request_time.total_seconds() * 1000, 1),
            remote_addr=environ.get("REMOTE_ADDR"),
            bytes=getattr(resp, "sent", None),
            user_agent=environ.get("HTTP_USER_AGENT"),
        )


def status_code(status: object) -> int | None:
    """The code of a WSGI status (``"404 Not Found"`` → 404), None when there is none."""
    code = str(status).split(None, 1)[0] if status else ""
    return int(code) if code.isdigit() else None
