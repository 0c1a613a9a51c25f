"""Log filters for Dramatiq's own log lines: no payloads, no tracebacks for expected errors.

Dramatiq interpolates whole messages into its log lines (``"Failed to process message
%s with unhandled exception."`` renders ``analyze_call({'transcript': [...]})``), which
would put transcripts and health answers in the logs. ``RedactMessages`` replaces every
message argument with ``actor_name[message_id]`` before the line is rendered.

It also turns expected failures into one warning line without a traceback, so a
vendor or broker outage costs a few lines a minute (with ``infra.logs.RepeatLimiter``)
instead of a traceback per retry and per consumer:

- Dramatiq's error line for a ``TransientError`` (a vendor timeout, a broker blip, a
  conversation not ready): the message is retried;
- a consumer that lost the broker (redis-py's connection or timeout errors): Dramatiq
  restarts it, and says so at INFO every time; that line becomes DEBUG.

Unexpected exceptions keep their traceback (rendered without local variables). The
failure recorder keeps the full traceback of every dead letter either way.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy

from contracts.errors import TransientError

_UNHANDLED = "Failed to process message %s with unhandled exception."
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

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; drop it only when it became a DEBUG line not logged."""
        if not isinstance(record.args, tuple):
            # Dramatiq logs with positional arguments only.
            return True
        record.args = tuple(redact(arg) for arg in record.args)
        error = record.exc_info[1] if record.exc_info else None
        if record.msg == _UNHANDLED and isinstance(error, TransientError):
            _one_line(record, "Failed to process message %s: %s: %s (it will be retried).")
        elif record.msg == _CONSUMER_ERROR and isinstance(error, _BROKER_LOST):
            _one_line(record, "Consumer lost the broker: %s: %s (it will reconnect).")
        elif record.msg == _CONSUMER_RESTART:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            # The logger let it through at INFO; at DEBUG it passes only if asked for.
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _one_line(record: logging.LogRecord, template: str) -> None:
    """Rewrite an error record with a traceback as one warning line naming the error."""
    error = record.exc_info[1] if record.exc_info else None
    record.msg = template
    record.args = (*(record.args or ()), type(error).__name__, str(error))
    record.exc_info = None
    record.exc_text = None
    record.levelno, record.levelname = logging.WARNING, "WARNING"
