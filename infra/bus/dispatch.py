"""Getting an accepted job's first message onto the bus without making anyone wait.

Intake commits the job to the inbox before it answers; publishing is then best effort,
because the scheduler's relay publishes whatever is left (``scheduler.relay``). What
must not happen is a request waiting on the broker: a frozen Redis holds every publish
for the full socket timeout (FIELD-NOTES), and a request thread with it.

- ``BackgroundDispatcher`` (the API): the request puts the job on a bounded in-memory
  queue and answers; one thread publishes. When a publish fails the breaker opens for
  ``cooldown_s``: the queue is handed to the relay (left pending in the inbox) and new
  jobs go straight to the relay until a publish is tried again. A full queue also
  leaves jobs to the relay. Nothing is lost either way: the inbox row is committed.
- ``InlineDispatcher`` publishes on the caller's thread, for processes with no request
  waiting (the scheduler) and for tests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from contracts.errors import TransientError
from infra.bus.publishing import Envelope, Publisher
from infra.logs import get_logger

_log = get_logger(__name__)

STOP_POLL_S = 0.2
"""How often an idle publishing thread checks whether it should stop."""


class PublishedMarks(Protocol):
    """Where a published job is recorded (the inbox)."""

    def mark_published(self, *job_ids: str) -> None:
        """Record that these jobs' first messages are on the bus."""
        ...


class Dispatcher(Protocol):
    """Hands an accepted job's first message to the bus."""

    def dispatch(self, job_id: str, envelope: Envelope) -> None:
        """Publish now, later, or leave it to the relay; never raise for the broker."""
        ...


def publish_and_mark(
    publisher: Publisher, marks: PublishedMarks, job_id: str, envelope: Envelope
) -> bool:
    """Publish and record it; return False when the broker did not take it.

    Raises:
        TransientError: Never for the broker; only when the inbox could not record the
            publish (the relay then publishes it again, which is harmless).
    """
    try:
        publisher.publish(envelope)
    except TransientError as error:
        _log.warning("broker unavailable; job left for the relay", job_id=job_id, error=str(error))
        return False
    marks.mark_published(job_id)
    _log.info("job queued", job_id=job_id, queue=envelope.queue, actor=envelope.actor)
    return True


@dataclass
class InlineDispatcher:
    """Publishes on the caller's thread; a broker outage leaves the job to the relay."""

    publisher: Publisher
    marks: PublishedMarks

    def dispatch(self, job_id: str, envelope: Envelope) -> None:
        """Publish and mark the job published, or leave it pending."""
        publish_and_mark(self.publisher, self.marks, job_id, envelope)


class BackgroundDispatcher:
    """Publishes accepted jobs on a thread of its own, behind a circuit breaker.

    Args:
        publisher: The bus.
        marks: Records published jobs.
        queue_size: Jobs waiting at most; more are left to the relay.
        cooldown_s: How long after a failed publish jobs go to the relay directly.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        publisher: Publisher,
        marks: PublishedMarks,
        *,
        queue_size: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self._marks = marks
        self._queue: queue.Queue[tuple[str, Envelope]] = queue.Queue(queue_size)
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._open_until = 0.0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.left_for_relay = 0
        """Jobs handed to the relay instead of published here (for logs and tests)."""

    @property
    def open(self) -> bool:
        """Whether the breaker is open (jobs go to the relay)."""
        return self._clock() < self._open_until

    def dispatch(self, job_id: str, envelope: Envelope) -> None:
        """Queue the job for the publishing thread; never blocks."""
        if self.open:
            self._leave_for_relay()
            return
        try:
            self._queue.put_nowait((job_id, envelope))
        except queue.Full:
            self._leave_for_relay()

    def start(self) -> None:
        """Start the publishing thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued within ``timeout_s``, then stop; the rest is the relay's.

        Returns within ``timeout_s`` even while a frozen broker holds a publish.
        """
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout_s)
        self._thread = None

    def _leave_for_relay(self) -> None:
        with self._lock:
            self.left_for_relay += 1

    def _run(self) -> None:
        while True:
            try:
                job_id, envelope = self._queue.get(timeout=STOP_POLL_S)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            if self.open:
                self._leave_for_relay()
                continue
            self._publish(job_id, envelope)

    def _publish(self, job_id: str, envelope: Envelope) -> None:
        try:
            published = publish_and_mark(self._publisher, self._marks, job_id, envelope)
        except TransientError as error:
            # The job is on the bus; only its mark is missing. The relay publishes it
            # again, which the idempotent steps absorb.
            _log.warning("publish not recorded", job_id=job_id, error=str(error))
            return
        # The thread must outlive any one job: an unexpected error leaves that job to
        # the relay (its inbox row is committed) and is logged with its traceback.
        except Exception:  # noqa: BLE001
            _log.exception("dispatch failed; job left for the relay", job_id=job_id)
            self._leave_for_relay()
            return
        if not published:
            self._open_until = self._clock() + self._cooldown_s
            self._leave_for_relay()
