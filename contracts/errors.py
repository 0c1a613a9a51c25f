"""The two kinds of failure every step and adapter speaks in.

::

    SwitchboardError
    ├── TransientError      retry with backoff (timeouts, 5xx, 429, "not ready yet")
    │   └── NotReadyError   the upstream resource exists but is not finished (expected)
    └── PermanentError      retrying cannot help: straight to the dead-letter queue
        │                   (validation errors, 4xx from a vendor, missing state)
        └── OutcomeUnknown  an irreversible request may or may not have taken effect
                            (a timeout after the request was sent): retrying could
                            repeat it, so it is recorded for review instead

Adapters translate vendor exceptions into these; nobody swallows them.

An error class marked ``expected`` is part of normal operation, not a fault (a
conversation still processing when its webhook arrives): the actor shell logs it as one
line without a traceback, and Dramatiq's own lines about it stay quiet. It is raised
all the same, so it is retried and dead-lettered like any other error of its kind.
"""

from typing import ClassVar


class SwitchboardError(Exception):
    """Base of the errors that decide how a job fails."""

    expected: ClassVar[bool] = False
    """Part of normal operation: logged as one line, without a traceback."""


class TransientError(SwitchboardError):
    """A failure that may succeed on a later attempt; the message is retried."""


class NotReadyError(TransientError):
    """The upstream resource is not finished yet (e.g. a conversation still processing)."""

    expected = True


class PermanentError(SwitchboardError):
    """A failure no retry can fix; the message goes to the dead-letter queue at once."""


class OutcomeUnknown(PermanentError):  # noqa: N818  (a state, not a bug)
    """An irreversible request (placing a call) may or may not have taken effect."""
