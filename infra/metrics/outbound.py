"""Requests that reach out to people, counted by outcome at the adapter's port.

``counted`` sorts a request by what its adapter raised (the adapters translate their
vendors' failures, see ``contracts.errors``)::

    returned ................................. sent
    OutcomeUnknown ........................... unknown  (sent, no answer: for review)
    PermanentError (the rest) ................ refused  (the provider said no)
    TransientError ........................... failed   (did not arrive: retried)
    anything else (a bug, a time limit) ...... unknown  (it may have gone out)

and re-raises whatever it caught. ``CountedTelephony`` wraps the telephony port
(channel ``call``); a sender of messages wraps its port the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from contracts.daily_calls import PlaceCall
from contracts.errors import OutcomeUnknown, PermanentError, TransientError
from infra.metrics.work import OutboundOutcome, WorkMetrics


@contextmanager
def counted(metrics: WorkMetrics, channel: str) -> Iterator[None]:
    """Count the request made in the block by its outcome (see the module docstring)."""
    outcome: OutboundOutcome = "unknown"
    try:
        yield
        outcome = "sent"
    except OutcomeUnknown:
        raise
    except PermanentError:
        outcome = "refused"
        raise
    except TransientError:
        outcome = "failed"
        raise
    finally:
        metrics.outbound_request(channel, outcome)


class Telephony(Protocol):
    """What ``CountedTelephony`` wraps (the worker's telephony adapters)."""

    @property
    def vendor(self) -> str | None:
        """The vendor whose limits apply; None for the simulator."""
        ...

    def place(self, command: PlaceCall) -> str:
        """Place the call; return the provider's call id."""
        ...


class CountedTelephony:
    """The telephony port, each call placed counted by outcome (channel ``call``).

    Args:
        inner: The adapter that places the calls.
        metrics: Where the counts go.
    """

    CHANNEL = "call"

    def __init__(self, inner: Telephony, metrics: WorkMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def vendor(self) -> str | None:
        """The wrapped adapter's vendor (its throttle applies)."""
        return self._inner.vendor

    def place(self, command: PlaceCall) -> str:
        """Place the call through the wrapped adapter and count its outcome.

        Raises:
            TransientError, PermanentError, OutcomeUnknown: As the wrapped adapter.
        """
        with counted(self._metrics, self.CHANNEL):
            return self._inner.place(command)
