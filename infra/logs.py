"""Structured logging: structlog over the standard library, configured once per process.

Development gets readable console lines; production gets one JSON object per line,
and then every line the process prints is one: its libraries' loggers (gunicorn's,
Dramatiq's, Alembic's) have no handlers of their own and go through the root handler
configured here, and what bypasses logging (uncaught exceptions, warnings, prints to
stdout and stderr) is made JSON by ``infra.raw_output``. The correlation id is bound
with ``bind_context`` and appears on every line logged while it is bound, from the
webhook to the last pipeline step.

Two rules keep the logs safe and bounded:

- No personal data: tracebacks are rendered plainly, never with local variables (the
  console renderer's rich tracebacks print every frame's locals, transcripts
  included); processes add filters that redact payloads from library log lines
  (``infra.bus.log_filters``); contracts hide input values in validation errors.
- Bounded volume: ``RepeatLimiter`` lets the same warning or error (same logger,
  template and exception type) through a few times per window, then counts it and
  says how many were held back, so an outage costs a handful of lines a minute instead
  of a traceback per retry.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from infra.raw_output import restore_raw_output, route_raw_output, underlying
from infra.settings import Settings

REPEAT_WINDOW_S = 60.0
"""The window of ``RepeatLimiter``."""

REPEAT_BURST = 3
"""How many records of one kind pass in each window before the rest are counted."""


QUIETED = {"alembic.runtime.plugins": logging.WARNING}
"""Library loggers whose INFO lines tell an operator nothing (Alembic names each of its
plugins, seven lines, wherever it is imported: in every gunicorn and Dramatiq process)."""


def configure_logging(
    settings: Settings, *, process: str, filters: Sequence[logging.Filter] = ()
) -> None:
    """Configure structlog and the standard library for this process.

    Args:
        settings: The process settings (level, format, environment).
        process: Name bound to every line (``api``, ``worker``, ``worker-probes``,
            ``scheduler``, ``migrate``).
        filters: Extra filters of the root handler, run before the repeat limiter
            (e.g. redaction of library log lines).
    """
    use_json = json_logs(settings)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        # A processor, not a context variable: threads started later (the dispatcher,
        # probes, Dramatiq's) do not inherit context variables.
        _ProcessName(process),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=underlying(sys.stderr).isatty(),
            # The default (rich) formatter prints each frame's local variables.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = StderrHandler()
    handler.setFormatter(formatter)
    for extra in filters:
        handler.addFilter(extra)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name, level in QUIETED.items():
        logging.getLogger(name).setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    if use_json:
        route_raw_output(process)
    else:
        restore_raw_output()


def json_logs(settings: Settings) -> bool:
    """Whether ``settings`` ask for JSON logs (``auto``: in production)."""
    return settings.log_format == "json" or (
        settings.log_format == "auto" and settings.environment == "production"
    )


class StderrHandler(logging.Handler):
    """Writes each record to the process's stderr of the moment.

    Looked up at each record, not bound once: Dramatiq points a child's ``sys.stderr``
    at the pipe its main process relays after the fork, and a test runner swaps it per
    test. Written under a ``JsonLines`` wrapper (``infra.raw_output``), whose parsing
    each line would only cost time.
    """

    terminator = "\n"

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and write it as one line."""
        try:
            stream = underlying(sys.stderr)
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001  (logging's contract: report, never raise)
            self.handleError(record)


def _identity(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return event


@dataclass(frozen=True)
class _ProcessName:
    """Adds ``process=<name>`` to every event."""

    name: str

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event.setdefault("process", self.name)
        return event


@dataclass
class _Seen:
    window_start: float
    passed: int = 0
    held: int = 0


class RepeatLimiter(logging.Filter):
    """Lets at most ``burst`` similar warnings or errors through per ``window_s``.

    Records are similar when they share the logger (one per class, so Dramatiq's
    ``ConsumerThread(<queue>)`` loggers count as one), the message template (before
    interpolation, so different message ids count as one kind) and the exception
    type. The first record after a window in which some were held back says how many
    (``... [312 similar held back in the last 60 s]``). INFO and below always pass.

    Args:
        window_s: The window length.
        burst: Records of one kind passed per window.
        clock: Monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        window_s: float = REPEAT_WINDOW_S,
        burst: int = REPEAT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.burst = burst
        self._clock = clock
        self._seen: dict[tuple[str, str, str], _Seen] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass, count or annotate ``record``."""
        if record.levelno < logging.WARNING:
            return True
        key = (_family(record.name), *_kind(record))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or now - seen.window_start >= self.window_s:
                held = seen.held if seen is not None else 0
                self._seen[key] = _Seen(window_start=now, passed=1)
                if held:
                    _annotate(record, f"[{held} similar held back in the last {self.window_s:g} s]")
                return True
            if seen.passed < self.burst:
                seen.passed += 1
                return True
            seen.held += 1
            return False


def _family(name: str) -> str:
    """The logger's name without a per-instance suffix (``ConsumerThread(calls.index)``)."""
    return name.split("(", 1)[0]


def _kind(record: logging.LogRecord) -> tuple[str, str]:
    """The template and exception type of a standard-library or structlog record."""
    if isinstance(record.msg, dict):
        error = record.msg.get("exc_info")
        exc_type = type(error).__name__ if isinstance(error, BaseException) else ""
        return str(record.msg.get("event", "")), exc_type
    exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
    return str(record.msg), exc_type


def _annotate(record: logging.LogRecord, note: str) -> None:
    if isinstance(record.msg, dict):
        # A structlog event dict, wrapped for the formatter.
        record.msg = {**record.msg, "held_back": note}
    else:
        record.msg = f"{record.msg} {note.replace('%', '%%')}"


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
