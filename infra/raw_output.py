"""What a process writes outside logging, kept to one JSON object per line.

With JSON logs on, every line a process prints must parse, but not everything goes
through logging: gunicorn prints the error of a worker that failed to boot after
logging it; multiprocessing prints the traceback of a Dramatiq child that crashed; the
CLI prints its results and errors; Python prints uncaught exceptions and warnings.
``route_raw_output`` (called by ``infra.logs.configure_logging`` when the logs are JSON)
makes each of these JSON:

- an uncaught exception, in the main thread or another, is logged at CRITICAL by the
  ``uncaught`` logger, its traceback in that one line's ``exception`` field;
- warnings are logged by ``py.warnings``;
- ``sys.stdout`` and ``sys.stderr`` become ``JsonLines`` streams: a line that is already
  a JSON object passes unchanged (Dramatiq's main process relays its children's log
  lines that way), any other line is wrapped in one (``{"event": <the line>, "logger":
  "stderr", "level": "error", …}``; ``stdout`` lines are ``info``), blank lines dropped.

The log handler writes to the stream underneath (``underlying``), never through the
wrapper. ``restore_raw_output`` undoes it all (console logs).
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from types import TracebackType
from typing import TextIO

import structlog

_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


class JsonLines(io.TextIOBase):
    """A text stream that writes JSON lines through and wraps every other line in one.

    A partial line waits for its newline (a ``print`` is several writes).

    Args:
        raw: The stream written to.
        logger: The ``logger`` field of a wrapped line (``stdout``, ``stderr``).
        level: Its ``level`` field.
        process: Its ``process`` field, as on every log line.
    """

    def __init__(self, raw: TextIO, *, logger: str, level: str, process: str) -> None:
        super().__init__()
        self.raw = raw
        self._fields = {"process": process, "level": level, "logger": logger}
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str, /) -> int:
        """Buffer ``text``; write each complete line as JSON."""
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            for line in lines:
                if line.strip():
                    self.raw.write(self._as_json(line) + "\n")
            if lines:
                self.raw.flush()
        return len(text)

    def _as_json(self, line: str) -> str:
        if line.lstrip().startswith("{"):
            try:
                if isinstance(json.loads(line), dict):
                    return line
            except ValueError:
                pass
        return json.dumps(_STAMP(None, "", {"event": line.rstrip(), **self._fields}))

    def flush(self) -> None:
        """Flush the stream underneath (a partial line stays until its newline)."""
        self.raw.flush()

    def close(self) -> None:
        """Write a pending partial line; the stream underneath stays open."""
        with self._lock:
            pending, self._pending = self._pending, ""
            if pending.strip():
                self.raw.write(self._as_json(pending) + "\n")
                self.raw.flush()
        super().close()

    def writable(self) -> bool:
        """Always."""
        return True

    def isatty(self) -> bool:
        """Never: a JSON line carries no colours."""
        return False

    def fileno(self) -> int:
        """The file descriptor underneath (writes to it bypass the wrapping)."""
        return self.raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only here, as on any stream
        """The encoding of the stream underneath."""
        return str(getattr(self.raw, "encoding", None) or "utf-8")


def underlying(stream: TextIO) -> TextIO:
    """The stream a ``JsonLines`` wraps, or ``stream`` itself."""
    return stream.raw if isinstance(stream, JsonLines) else stream


def route_raw_output(process: str) -> None:
    """Make stdout, stderr, uncaught exceptions and warnings JSON lines (idempotent)."""
    sys.stdout = JsonLines(underlying(sys.stdout), logger="stdout", level="info", process=process)
    sys.stderr = JsonLines(underlying(sys.stderr), logger="stderr", level="error", process=process)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    logging.captureWarnings(True)


def restore_raw_output() -> None:
    """Undo ``route_raw_output``: plain streams and Python's own hooks."""
    sys.stdout = underlying(sys.stdout)
    sys.stderr = underlying(sys.stderr)
    if sys.excepthook is _log_uncaught:
        sys.excepthook = sys.__excepthook__
    if threading.excepthook is _log_uncaught_in_thread:
        threading.excepthook = threading.__excepthook__


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    logging.getLogger("uncaught").critical(
        "uncaught exception: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # Python's own hook ignores it too
    thread = args.thread.name if args.thread is not None else "?"
    error = args.exc_value
    logging.getLogger("uncaught").critical(
        "uncaught exception in thread %s: %s: %s",
        thread,
        args.exc_type.__name__,
        error,
        exc_info=(args.exc_type, error, args.exc_traceback) if error is not None else None,
    )
