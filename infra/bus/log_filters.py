"""Log filters for Dramatiq's own log lines: no payloads, no tracebacks for expected errors.

Dramatiq interpolates whole messages into its log lines (``"Failed to process message
%s with unhandled exception."`` renders ``analyze_call({'transcript': [...]})``), which
would put transcripts and health answers in the logs. ``RedactMessages`` replaces every
message argument with ``actor_name[message_id]`` before the line is rendered.

It also turns Dramatiq's error line for a ``TransientError`` (an expected, retried
failure: a vendor timeout, a broker blip) into one warning line without a traceback;
unexpected exceptions keep theirs (rendered without local variables). The failure
recorder keeps the full traceback of every dead letter either way.
"""

from __future__ import annotations

import logging
from typing import Any

from dramatiq import Message
from dramatiq.broker import MessageProxy

from contracts.errors import TransientError

_UNHANDLED = "Failed to process message %s with unhandled exception."


def redact(value: Any) -> Any:
    """``actor[message_id]`` for a Dramatiq message, anything else unchanged."""
    if isinstance(value, Message | MessageProxy):
        return f"{value.actor_name}[{value.message_id}]"
    return value


class RedactMessages(logging.Filter):
    """Redacts Dramatiq messages from log records and quiets expected failures."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drops it."""
        if not isinstance(record.args, tuple):
            # Dramatiq logs with positional arguments only.
            return True
        record.args = tuple(redact(arg) for arg in record.args)
        error = record.exc_info[1] if record.exc_info else None
        if record.msg == _UNHANDLED and isinstance(error, TransientError):
            record.msg = "Failed to process message %s: %s: %s (it will be retried)."
            record.args = (*record.args, type(error).__name__, str(error))
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
