"""The answers of the users API: users, their call preferences and their calls."""

from __future__ import annotations

from pydantic import BaseModel, Field

from contracts.values import CallPurpose, CallStatus
from producers.schemas import Answer, ClockTime, Day, Moment

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


class Preferences(Answer):
    """When a user is called."""

    call_enabled: bool = Field(description="Whether the user gets daily calls.")
    call_time: ClockTime = Field(description="Local call time.")
    local_tz: str = Field(description="The user's IANA time zone.")
    window_start: ClockTime | None = Field(description="Earliest local time of a retry.")
    window_end: ClockTime | None = Field(description="Latest local time of a retry.")


class NextCall(Answer):
    """When a user's next call is."""

    next_call_at: Moment | None = Field(description="The next call, UTC; null while calls are off.")
    next_local_date: Day | None = Field(description="The user's local date of that call.")


class ScheduledPreferences(NextCall, Preferences):
    """Call preferences, and the next call they give."""


class User(Answer):
    """A user called every day."""

    id: str = Field(description="The user's id.")
    tenant_id: str = Field(description="Their tenant.")
    name: str = Field(description="Their name.")
    phone: str = Field(description="The number called, E.164.")
    call_preferences: Preferences = Field(description="When they are called.")
    next_call_at: Moment | None = Field(description="The next call, UTC; null while calls are off.")
    next_local_date: Day | None = Field(description="The user's local date of that call.")
    created_at: Moment = Field(description="When they were added.")


class Users(Answer):
    """Users, by name."""

    users: list[User] = Field(description="By name.")


class CreatedUser(Answer):
    """A user added."""

    id: str = Field(description="The new user's id.")


class UserCall(Answer):
    """One attempt at one outbound call of a user."""

    id: str = Field(description="The call's id.")
    status: CallStatus = Field(
        description="Where it is: `scheduled` (a retry) or `queued` → `placing` → `placed` → "
        "`ringing` → `in_progress` → `completed`, `failed`, `no_answer` or `busy`; or "
        "`unknown` (may have been placed), `cancelled`, `missed`, `unplaceable`."
    )
    purpose: CallPurpose = Field(description="`daily` or `callback`.")
    local_date: Day | None = Field(description="The user's local date it is for.")
    attempt: int = Field(description="1 for the first attempt.")
    due_at: Moment | None = Field(description="When it is (or was) due.")
    placed_at: Moment | None = Field(description="When the provider took it.")
    provider_call_id: str | None = Field(description="The provider's call id.")
    ended_at: Moment | None = Field(description="When it ended.")
    duration_secs: int | None = Field(description="Its length, once ended.")
    error: str | None = Field(description="Why it failed, when it did.")


class UserCalls(Answer):
    """A user's calls, newest first."""

    calls: list[UserCall] = Field(description="Newest first.")


class Page(BaseModel):
    """The query of a list."""

    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="How many, newest first."
    )


class TenantPage(Page):
    """The query of the users list."""

    tenant: str | None = Field(
        default=None, description="The admin's choice of tenant (a tenant's key ignores it)."
    )


class TenantOfNewUser(BaseModel):
    """The query of a new user."""

    tenant: str | None = Field(
        default=None,
        description="The tenant of the new user: required with an admin token, ignored with a "
        "tenant's key.",
    )
