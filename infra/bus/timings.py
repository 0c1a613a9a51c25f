"""Each message's wait in its queue and its run, per queue and actor (Dramatiq middleware).

``MessageTimings`` observes, in seconds (``infra.metrics.work``):

- the queue wait, when a worker starts a message: from when it became ready (its eta
  for a retry, a deferral or a ``delay=``, else its enqueue: ``ready_since_ms``, the
  same reading the queue report's oldest age uses) to now. The clocks of the host that
  enqueued and of this one are compared: skew shows up here (a negative wait counts
  as 0);
- the run time, when the message is done, whatever its outcome (a failure that will be
  retried included; a message skipped before it started is not observed).

Placed in the worker's middleware after ``AgeLimit``, so a message skipped for its age
never counts as started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware

from infra.bus.queues import ready_since_ms
from infra.metrics.work import WorkMetrics


class MessageTimings(Middleware):
    """Observes each message's queue wait and run time.

    Args:
        metrics: Where the observations go.
        clock: Wall-clock seconds (a message's timestamps are wall-clock ms).
        timer: Monotonic seconds, for the run time.
    """

    def __init__(
        self,
        metrics: WorkMetrics,
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._timer = timer
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:  # noqa: ARG002
        """Observe the wait; note when the run started."""
        try:
            ready_ms = ready_since_ms(message.message_timestamp, message.options)
        except (TypeError, ValueError):
            ready_ms = None  # an eta that is no number: the run is still timed
        if ready_ms is not None:
            waited_s = max(self._clock() * 1000 - ready_ms, 0) / 1000
            self._metrics.queue_wait.labels(message.queue_name, message.actor_name).observe(
                waited_s
            )
        with self._lock:
            self._started[message.message_id] = self._timer()

    def after_process_message(
        self,
        broker: Broker,  # noqa: ARG002 (dramatiq passes it)
        message: MessageProxy,
        *,
        result: Any = None,  # noqa: ARG002
        exception: BaseException | None = None,  # noqa: ARG002 (any outcome is timed)
    ) -> None:
        """Observe the run time."""
        with self._lock:
            started = self._started.pop(message.message_id, None)
        if started is not None:
            self._metrics.run_time.labels(message.queue_name, message.actor_name).observe(
                self._timer() - started
            )

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:  # noqa: ARG002
        """Forget a message skipped after its start was noted (nothing ran)."""
        with self._lock:
            self._started.pop(message.message_id, None)
