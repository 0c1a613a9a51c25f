"""Log filters for Dramatiq's own log lines: no payloads, no tracebacks for expected errors.

Dramatiq interpolates whole messages into its log lines (``"Failed to process message
%s with unhandled exception."`` renders ``analyze_call({'transcript': [...]})``), which
would put transcripts and health answers in the logs. ``RedactMessages`` replaces every
message argument with ``actor_name[message_id]`` before the line is rendered.

It also turns failures that are no bug into one line without a traceback, so a vendor
or broker outage costs a few lines a minute (with ``infra.logs.RepeatLimiter``) instead
of a traceback per retry and per consumer:

- an error marked ``expected`` (``NotReadyError``: a conversation still processing) is
  normal operation, and the actor shell has logged it with the job's context: Dramatiq's
  error line about it and Retries' ``Retrying message …`` line that follows are
  dropped (Retries' ``Retries exceeded`` warning stays);
- Dramatiq's error line for any other ``TransientError`` (a vendor timeout, a broker
  blip) becomes one warning: the message is retried;
- a consumer that lost the broker (redis-py's connection or timeout errors): Dramatiq
  restarts it, and says so at INFO every time; that line becomes DEBUG.

Unexpected exceptions keep their traceback (rendered without local variables). The
failure recorder keeps the full traceback of every dead letter either way.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy

from contracts.errors import SwitchboardError, TransientError

_UNHANDLED = "Failed to process message %s with unhandled exception."
_RETRYING = "Retrying message %r in %d milliseconds."
_CONSUMER_ERROR = "Consumer encountered an unexpected error."
_CONSUMER_RESTART = "Restarting consumer in %0.2f seconds."
_BROKER_LOST = (redis.ConnectionError, redis.TimeoutError)


def redact(value: Any) -> Any:
    """``actor[message_id]`` for a Dramatiq message, anything else unchanged."""
    if isinstance(value, Message | MessageProxy):
        return f"{value.actor_name}[{value.message_id}]"
    return value


class RedactMessages(logging.Filter):
    """Redacts Dramatiq messages from log records and quiets expected failures."""

    def __init__(self) -> None:
        super().__init__()
        # Retries logs its decision in the worker thread that logged the failure, right
        # after it: one slot per thread pairs the two lines.
        self._quiet = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place, or drop it (an expected failure's, or DEBUG unasked)."""
        if not isinstance(record.args, tuple):
            # Dramatiq logs with positional arguments only.
            return True
        error = record.exc_info[1] if record.exc_info else None
        if record.msg == _UNHANDLED and isinstance(error, SwitchboardError) and error.expected:
            self._quiet.message_id = getattr(record.args[0], "message_id", None)
            return False
        if record.msg == _RETRYING and self._quieted(record.args[0]):
            return False
        record.args = tuple(redact(arg) for arg in record.args)
        if record.msg == _UNHANDLED and isinstance(error, TransientError):
            _one_line(record, "Failed to process message %s: %s: %s (it will be retried).")
        elif record.msg == _CONSUMER_ERROR and isinstance(error, _BROKER_LOST):
            _one_line(record, "Consumer lost the broker: %s: %s (it will reconnect).")
        elif record.msg == _CONSUMER_RESTART:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            # The logger let it through at INFO; at DEBUG it passes only if asked for.
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True

    def _quieted(self, message_id: object) -> bool:
        """Whether this thread's last failure was an expected one of ``message_id``."""
        quiet = getattr(self._quiet, "message_id", None)
        self._quiet.message_id = None
        return quiet is not None and quiet == message_id


def _one_line(record: logging.LogRecord, template: str) -> None:
    """Rewrite an error record with a traceback as one warning line naming the error."""
    error = record.exc_info[1] if record.exc_info else None
    record.msg = template
    record.args = (*(record.args or ()), type(error).__name__, str(error))
    record.exc_info = None
    record.exc_text = None
    record.levelno, record.levelname = logging.WARNING, "WARNING"
