"""The answers of ``/healthz`` and ``/readyz``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from producers.schemas import Answer


class Alive(Answer):
    """The process answers."""

    status: Literal["ok"] = Field(description="Always `ok`.")


class Check(Answer):
    """The latest probe of one dependency."""

    ok: bool = Field(description="Whether it answered its latest probe in time.")
    required: bool = Field(description="Whether the process is unavailable without it.")
    adapter: str = Field(description="What serves it (`sqlite`, `redis`, `local-…`).")
    error: str | None = Field(description="Why it is down.")
    checked_s_ago: float | None = Field(description="Seconds since its latest probe ended.")


class ReadinessReport(Answer):
    """Whether the process can do its job now, and why."""

    status: Literal["ready", "degraded", "unavailable"] = Field(
        description="`ready`; `degraded`: an optional dependency is down (still 200); "
        "`unavailable`: a required one is (503)."
    )
    checks: dict[str, Check] = Field(description="Every dependency, by name.")
    adapters: dict[str, str] = Field(description="The adapters the process built, by role.")
