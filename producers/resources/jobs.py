"""``GET /api/jobs/{job_id}``: any job, whatever its workflow, step by step.

The job states are the same for every workflow: ``queued``, ``processing``,
``completed``, ``failed`` (``infra.store.records``). Steps come in pipeline order, each
summarising its messages; ``children`` counts the messages the job's steps published
(one per user of a daily-calls tick, one per channel of a lead). A failed job names the
step and the dead letter to look at. A tenant's key sees only its own jobs; another
tenant's job is a 404, exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import Sequence

import falcon

from contracts.fields import is_identifier
from infra.store.protocols import JobQueries
from infra.store.records import JobView, StepRecord
from producers.auth import BearerAuth
from producers.errors import ProblemError
from producers.operations import TENANT, operation, returns
from producers.schemas.jobs import Children, Job, JobError, Step


def steps_document(steps: Sequence[StepRecord]) -> list[Step]:
    """Steps as the job and call views show them, in pipeline order."""
    return [
        Step(
            name=s.name,
            status=s.status,
            attempts=s.attempts,
            error=s.error,
            messages=s.messages,
        )
        for s in steps
    ]


def job_document(view: JobView) -> Job:
    """The answer of one job."""
    failure = view.failure
    return Job(
        job_id=view.job_id,
        kind=view.kind,
        status=view.status,
        tenant=view.tenant_name,
        tenant_id=view.tenant_id,
        correlation_id=view.correlation_id,
        created_at=view.created_at.isoformat(),
        updated_at=view.updated_at.isoformat(),
        steps=steps_document(view.steps),
        children=Children(
            total=view.children.total,
            completed=view.children.completed,
            failed=view.children.failed,
            outstanding=view.children.outstanding,
        ),
        error=(
            JobError(
                step=failure.step,
                message=failure.error,
                dead_letter_id=failure.dead_letter_id,
            )
            if failure is not None
            else None
        ),
        redrives=view.redrives,
    )


class JobResource:
    """``GET /api/jobs/{job_id}``."""

    def __init__(self, *, auth: BearerAuth, jobs: JobQueries) -> None:
        self._auth = auth
        self._jobs = jobs

    @operation(
        "getJob",
        summary="A job, step by step",
        tag="jobs",
        access=TENANT,
        answers=[returns(200, "The job.", Job)],
        problems={404: "no such job, or another tenant's"},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        """Answer the job's status, steps and children (404 if unknown or not yours)."""
        principal = self._auth.authenticate(req)
        view = (
            self._jobs.job_view(job_id, tenant_id=principal.tenant_id)
            if is_identifier(job_id)
            else None
        )
        if view is None:
            raise ProblemError(falcon.HTTP_404, title="Job not found", detail=f"no job {job_id}")
        resp.media = job_document(view).media()
