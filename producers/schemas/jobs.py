"""The answer of ``GET /api/jobs/{job_id}``: any job, step by step."""

from __future__ import annotations

from pydantic import Field

from infra.store.records import JobStatus, MessageStatus
from producers.schemas import Answer, Moment


class Step(Answer):
    """One step of a job, summarising every message it consumed."""

    name: str = Field(description="The step (`fetch_transcript`, `analyze_call` …).")
    status: MessageStatus = Field(
        description="The most pressing status of its messages: "
        "`queued → processing ⇄ retrying → completed | failed`."
    )
    attempts: int = Field(description="Attempts, added up over its messages.")
    error: str | None = Field(description="The latest error, if any.")
    messages: int = Field(description="How many messages it consumed.")


class Children(Answer):
    """The messages the job's steps published (every message but the first)."""

    total: int = Field(description="Published.")
    completed: int = Field(description="Completed.")
    failed: int = Field(description="Dead-lettered.")
    outstanding: int = Field(description="Queued, running or waiting to retry.")


class JobError(Answer):
    """Why a job failed."""

    step: str | None = Field(description="The step that failed (`intake`: at intake).")
    message: str | None = Field(description="Its error.")
    dead_letter_id: str | None = Field(
        description="The dead letter to look at (`switchboard dlq show ID`)."
    )


class Job(Answer):
    """A job of any workflow, step by step."""

    job_id: str = Field(description="The job's id.")
    kind: str = Field(description="Its pipeline: `post_call`, `health_check`, `daily_calls` …")
    status: JobStatus = Field(
        description="`queued`: accepted, nothing started; `processing`: some messages are "
        "outstanding; `completed`: every message completed; `failed`: one was dead-lettered "
        "or the job stalled past its last re-drive."
    )
    tenant: str | None = Field(description="Its tenant's name (none for the platform's own).")
    tenant_id: str | None = Field(description="Its tenant's id.")
    correlation_id: str = Field(description="What it is about (a conversation id, a slot).")
    created_at: Moment = Field(description="When it was accepted.")
    updated_at: Moment = Field(description="When it last moved.")
    steps: list[Step] = Field(description="Its steps, in pipeline order.")
    children: Children = Field(description="The messages its steps published.")
    error: JobError | None = Field(description="Why it failed, when it did.")
    redrives: int = Field(description="How often the scheduler re-drove it after a stall.")
