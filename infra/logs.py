"""Structured logging: structlog over the standard library, configured once per process.

Development gets readable console lines; production gets one JSON object per line. The
correlation id (the conversation id) is bound with ``bind_context`` and appears on every
line logged while it is bound, from the webhook to the last pipeline step.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from infra.settings import Settings


def configure_logging(settings: Settings, *, process: str) -> None:
    """Configure structlog and the standard library for this process.

    Args:
        settings: The process settings (level, format, environment).
        process: Name bound to every line (``api``, ``worker``, ``scheduler``, ``cli``).
    """
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.environment == "production"
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(process=process)


def _identity(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return event


@contextmanager
def bind_context(**values: Any) -> Iterator[None]:
    """Bind values (e.g. ``correlation_id``) to every log line inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(name: str) -> Any:
    """A structlog logger named ``name``."""
    return structlog.stdlib.get_logger(name)
