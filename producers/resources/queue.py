"""``GET /api/queue/status`` and ``POST /api/queue/trigger``: the old service's admin paths.

Both need an admin token (a tenant's key is a 403: queues are shared); triggering is a
change, which a viewer's token may not make.

- ``status``: ``infra.queue_report`` — the old answer (``success``, ``queue``) extended
  with every queue, the pipelines' jobs of the last 24 h and the ticks' crons.
- ``trigger``: emits a daily-calls tick now (slot = now), through the intake like the
  scheduler's ticks. At most one per ``trigger_every_s``: the tick is deduplicated on
  that window, so a second trigger inside it is answered 429 with ``Retry-After`` and
  the first tick's job id, from any API worker, with no state outside the job store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import falcon

from infra.intake import Intake
from infra.ticks import DAILY_CALLS, submit_tick
from producers.auth import BearerAuth
from producers.errors import ProblemError
from producers.operations import ADMIN_CHANGE, ADMIN_READ, operation, returns
from producers.schemas.queues import QueueStatus, TickTriggered


class QueueReport(Protocol):
    """Builds the status report (``infra.queue_report.QueueReporter``)."""

    def report(self) -> dict[str, Any]:
        """The report."""
        ...


class QueueStatusResource:
    """``GET /api/queue/status``."""

    def __init__(self, *, auth: BearerAuth, reporter: QueueReport) -> None:
        self._auth = auth
        self._reporter = reporter

    @operation(
        "getQueueStatus",
        summary="Every queue, the pipelines' jobs and the ticks",
        tag="queues",
        access=ADMIN_READ,
        answers=[returns(200, "The report (null counts: the broker is down).", QueueStatus)],
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the queues, jobs and crons: the old service's answer, extended.

        Every queue's waiting, delayed, active and dead-lettered counts and the age of its
        oldest waiting message, each pipeline's jobs of the last 24 h, the health word and
        the ticks' crons. A broker that cannot be read makes it ``unhealthy``, not an error.
        """
        self._auth.authenticate(req).require_admin(change=False)
        resp.media = QueueStatus.model_validate(self._reporter.report()).media()


class QueueTriggerResource:
    """``POST /api/queue/trigger``.

    Args:
        auth: Authenticates the admin.
        intake: Records and dispatches the tick.
        every_s: At most one manual tick per this many seconds.
        clock: Current unix time.
    """

    def __init__(
        self, *, auth: BearerAuth, intake: Intake, every_s: int, clock: Callable[[], float]
    ) -> None:
        self._auth = auth
        self._intake = intake
        self._every_s = every_s
        self._clock = clock

    @operation(
        "triggerDailyCalls",
        summary="Emit a daily-calls tick now",
        tag="queues",
        access=ADMIN_CHANGE,
        answers=[returns(202, "The tick is queued.", TickTriggered)],
        problems={
            429: "a tick was triggered less than `SWITCHBOARD_DAILY_CALLS__TRIGGER_EVERY_S` "
            "ago: `job_id` names it"
        },
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Emit a daily-calls tick now (202), or 429 inside the rate-limit window."""
        self._auth.authenticate(req).require_admin(change=True)
        now = self._clock()
        window = int(now // self._every_s)
        slot = datetime.fromtimestamp(int(now), tz=UTC)
        admission = submit_tick(
            self._intake,
            DAILY_CALLS,
            slot,
            manual=True,
            external_id=f"{DAILY_CALLS.name}:manual:{window}",
        )
        if admission.outcome != "accepted":
            retry_after = max(1, math.ceil((window + 1) * self._every_s - now))
            raise ProblemError(
                falcon.HTTP_429,
                title="Too Many Requests",
                detail=f"a tick was triggered less than {self._every_s} s ago "
                f"(job {admission.job_id}); try again in {retry_after} s",
                extensions={"job_id": admission.job_id},
                headers={"Retry-After": str(retry_after)},
            )
        resp.status = falcon.HTTP_202
        resp.media = TickTriggered(
            success=True,
            jobId=admission.job_id,
            job_id=admission.job_id,
            slot=slot.isoformat(),
            message="Daily calls scheduler triggered successfully",
        ).media()
