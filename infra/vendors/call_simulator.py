"""A local telephony provider: places no call, plays its status webhooks back.

``place`` answers a ``sim_<hex>`` call id at once and schedules the call's status
events, ``step_s`` apart, by the outcome configured for the number (``completed`` for
any other)::

    completed   ringing → in_progress → completed (with "duration")
    failed      ringing → failed (with "error_message")
    no_answer   ringing → no_answer
    busy        busy

Each event is POSTed to ``webhook_url`` in CallKaro's webhook shape, with the call's
metadata (our ``call_id`` among it), a unique ``event_id`` and the time it was sent,
signed with ``telephony_signing.sign`` in ``X-CallKaro-Signature``. One daemon thread,
started on the first call, delivers every event in due order, so a call's events stay
in order while several calls interleave. A POST that fails in transport or gets 5xx is
retried with a short backoff (the API may be restarting; the ``event_id`` makes a
repeat harmless), then dropped with a warning; a 4xx is dropped with a warning at once.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.daily_calls import PlaceCall
from contracts.errors import TransientError
from infra.logs import get_logger
from infra.vendors.callkaro import call_metadata
from infra.vendors.telephony_signing import SIGNATURE_HEADER, sign

_log = get_logger(__name__)

SCRIPTS: dict[str, tuple[str, ...]] = {
    "completed": ("ringing", "in_progress", "completed"),
    "failed": ("ringing", "failed"),
    "no_answer": ("ringing", "no_answer"),
    "busy": ("busy",),
}
"""The statuses each simulated outcome sends, in order."""

RETRY_PAUSES_S = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Pauses before each retry of an undelivered event (about 4 s in all)."""

REQUEST_TIMEOUT_S = 5.0
SIMULATED_DURATION_S = 30
FAILURE_MESSAGE = "simulated failure"


@dataclass(frozen=True)
class _Event:
    provider_call_id: str
    status: str
    metadata: dict[str, Any]

    def body(self) -> bytes:
        payload: dict[str, Any] = {
            "call_id": self.provider_call_id,
            "status": self.status,
            "metadata": self.metadata,
            "event_id": uuid.uuid4().hex,
            "timestamp": datetime.now(UTC).isoformat(),
        }
        if self.status == "completed":
            payload["duration"] = SIMULATED_DURATION_S
        if self.status == "failed":
            payload["error_message"] = FAILURE_MESSAGE
        return json.dumps(payload).encode()

    @property
    def context(self) -> dict[str, Any]:
        return {"call_id": self.metadata["call_id"], "status": self.status}


@dataclass(frozen=True)
class _Failure:
    retryable: bool
    detail: str


@dataclass(order=True)
class _Due:
    at: float
    sequence: int
    event: _Event = field(compare=False)


class CallSimulator:
    """The simulator behind the ``Telephony`` port (local: never throttled).

    Args:
        webhook_url: Where the status webhooks go (the API's telephony webhook).
        secret: The HMAC secret the API verifies them with.
        step_s: Pause before each event of a call.
        outcomes: Outcome per E.164 number (``completed``, ``failed``, ``no_answer``,
            ``busy``); other numbers complete.
        client: The HTTP client to post with; by default one is built and owned.
        retry_pauses_s: Pauses before each retry of an undelivered event.
    """

    vendor: str | None = None
    """A local adapter: no vendor, no throttle."""

    label = "local-simulator"
    """How logs and readiness name this adapter."""

    def __init__(
        self,
        webhook_url: str,
        secret: str,
        *,
        step_s: float,
        outcomes: Mapping[str, str],
        client: httpx.Client | None = None,
        retry_pauses_s: Sequence[float] = RETRY_PAUSES_S,
    ) -> None:
        unknown = sorted(set(outcomes.values()) - set(SCRIPTS))
        if unknown:
            raise ValueError(f"unknown simulated outcomes {unknown}; known: {sorted(SCRIPTS)}")
        self._webhook_url = webhook_url
        self._secret = secret
        self._step_s = step_s
        self._outcomes = dict(outcomes)
        self._retry_pauses_s = tuple(retry_pauses_s)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=REQUEST_TIMEOUT_S)
        self._changed = threading.Condition()
        self._due: list[_Due] = []
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None
        # Set by close: pending events are then delivered until it, without pauses.
        self._deadline: float | None = None

    def place(self, command: PlaceCall) -> str:
        """Accept the call and schedule its status webhooks; return its ``sim_`` id.

        Raises:
            TransientError: The simulator is closed (the process is stopping).
        """
        provider_call_id = f"sim_{uuid.uuid4().hex}"
        statuses = SCRIPTS[self._outcomes.get(command.phone, "completed")]
        metadata = call_metadata(command)
        with self._changed:
            if self._deadline is not None:
                raise TransientError("the call simulator is closed")
            now = time.monotonic()
            for step, status in enumerate(statuses, start=1):
                event = _Event(provider_call_id, status, metadata)
                due = _Due(now + step * self._step_s, next(self._sequence), event)
                heapq.heappush(self._due, due)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="call-simulator", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()
        return provider_call_id

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting calls, deliver pending events within ``timeout_s``, stop.

        Pending events are sent at once, without their pauses; what is left when the
        time is up is dropped with a warning. Safe to call twice.
        """
        with self._changed:
            if self._deadline is None:
                self._deadline = time.monotonic() + timeout_s
            deadline = self._deadline
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            # Each request is cut at the deadline; the margin covers the last one.
            thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        if self._owns_client:
            self._client.close()

    def _run(self) -> None:
        while (event := self._next_event()) is not None:
            # The thread must outlive any one event: an unexpected error drops that
            # event and is logged with its traceback.
            try:
                self._deliver(event)
            except Exception:  # noqa: BLE001
                _log.exception("simulated webhook failed; dropped", **event.context)

    def _next_event(self) -> _Event | None:
        with self._changed:
            while True:
                now = time.monotonic()
                if self._deadline is not None:
                    if self._due and now < self._deadline:
                        return heapq.heappop(self._due).event
                    if self._due:
                        _log.warning("simulated webhooks dropped at close", events=len(self._due))
                        self._due.clear()
                    return None
                if self._due and self._due[0].at <= now:
                    return heapq.heappop(self._due).event
                self._changed.wait(self._due[0].at - now if self._due else None)

    def _deliver(self, event: _Event) -> None:
        body = event.body()
        for pause in (*self._retry_pauses_s, None):
            failure = self._post(body)
            if failure is None:
                return
            if not failure.retryable:
                _log.warning(
                    "simulated webhook rejected; dropped", error=failure.detail, **event.context
                )
                return
            if pause is None or not self._pause(pause):
                _log.warning(
                    "simulated webhook undelivered; dropped", error=failure.detail, **event.context
                )
                return

    def _post(self, body: bytes) -> _Failure | None:
        """Send once: None when delivered."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, timestamp=int(time.time())),
        }
        try:
            response = self._client.post(
                self._webhook_url, content=body, headers=headers, timeout=self._timeout()
            )
        except httpx.TransportError as exc:
            return _Failure(retryable=True, detail=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if status >= 400:
            return _Failure(retryable=status >= 500, detail=f"answered {status}")
        return None

    def _timeout(self) -> float:
        with self._changed:
            if self._deadline is None:
                return REQUEST_TIMEOUT_S
            return max(0.01, min(REQUEST_TIMEOUT_S, self._deadline - time.monotonic()))

    def _pause(self, seconds: float) -> bool:
        """Wait before a retry; False when ``close``'s deadline would pass first."""
        end = time.monotonic() + seconds
        with self._changed:
            while True:
                if self._deadline is not None and end > self._deadline:
                    return False
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return True
                self._changed.wait(remaining)
