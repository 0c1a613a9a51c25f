"""The answers of the old service's paths, ``/api/queue/status`` and ``/api/queue/trigger``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from producers.schemas import Answer, Moment

Counted = int | None
"""A count read from the broker: null when the broker cannot be read."""


class QueueCounts(Answer):
    """One queue's messages, from the broker, in the queue states every tool uses."""

    name: str = Field(description="The queue (`calls.analyze` …).")
    ready: Counted = Field(description="Ready to be fetched.")
    delayed: Counted = Field(description="Waiting for a retry's backoff or a deferral.")
    in_flight: Counted = Field(description="Fetched by a worker, not acknowledged yet.")
    dead_lettered: Counted = Field(description="Dead letters.")
    oldest_ready_age_s: float | None = Field(
        description="How long the oldest ready message has waited, in seconds; null when "
        "none waits."
    )


class PipelineJobs(Answer):
    """One pipeline's jobs updated in the window."""

    name: str = Field(description="The pipeline (`post_call`, `daily_calls` …).")
    queues: list[str] = Field(description="The queues its steps consume.")
    completed: int = Field(description="Jobs `completed`.")
    failed: int = Field(description="Jobs `failed`.")
    running: int = Field(description="Jobs `queued` or `processing`.")


class Cron(Answer):
    """A scheduler tick."""

    name: str = Field(description="The tick (`daily-calls`, `callbacks-due`).")
    cron: str = Field(description="Its crontab, UTC.")
    next: Moment | None = Field(description="Its next run.")


class LegacyCron(Answer):
    """A tick, in the old service's shape too."""

    key: str = Field(description="The tick's name (the old service's repeat key).")
    name: str = Field(description="The tick.")
    pattern: str = Field(description="Its crontab, UTC (the old service's name for it).")
    cron: str = Field(description="Its crontab, UTC.")
    next: Moment | None = Field(description="Its next run.")


class LegacyQueue(Answer):
    """The old service's one queue object, now for the daily-calls pipeline."""

    name: str = Field(description="Always `daily_calls`.")
    health: Literal["healthy", "unhealthy"] = Field(
        description="The old service's two words: `unhealthy` when the broker cannot be read "
        "(the counts are then null), else `healthy`. Dead letters and failed jobs are in "
        "`dead_lettered` and `failed`; any pipeline's make the top-level `health` `degraded`."
    )
    active: Counted = Field(description="Messages in flight.")
    waiting: Counted = Field(description="Messages ready.")
    delayed: Counted = Field(description="Messages delayed.")
    dead_lettered: Counted = Field(description="Dead letters.")
    completed: int = Field(description="Jobs completed in the window.")
    failed: int = Field(description="Jobs failed in the window.")
    paused: int = Field(description="Always 0: queues are never paused.")
    crons: list[LegacyCron] = Field(description="The ticks.")


class QueueStatus(Answer):
    """Every queue, the pipelines' jobs of the last day and the ticks' next runs."""

    success: Literal[True] = Field(description="Always true (the old service's field).")
    health: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="`degraded`: something is dead-lettered or a job failed in the window; "
        "`unhealthy`: the broker cannot be read (its counts are null)."
    )
    broker: str = Field(description="`ok`, or why the broker cannot be read.")
    queue: LegacyQueue = Field(description="The old service's answer.")
    queues: list[QueueCounts] = Field(description="Every queue.")
    pipelines: list[PipelineJobs] = Field(description="Every pipeline.")
    crons: list[Cron] = Field(description="The ticks.")
    window_hours: int = Field(description="The window of the jobs' counts.")
    generated_at: Moment = Field(description="When this was read.")


class TickTriggered(Answer):
    """A daily-calls tick emitted now."""

    success: Literal[True] = Field(description="Always true.")
    jobId: str = Field(description="The tick's job (the old service's name).")  # noqa: N815
    job_id: str = Field(description="The tick's job.")
    slot: Moment = Field(description="The tick's slot: now.")
    message: str = Field(description="What happened, for a person.")
