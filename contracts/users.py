"""The users API's bodies: who is called every day, when, and from where.

Shared by the HTTP API (``POST /api/users``, ``PUT /api/users/{id}/call-preferences``)
and ``switchboard users add``, so both refuse the same values with the same messages.
"""

from __future__ import annotations

from datetime import time

from pydantic import ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from contracts.base import Value
from contracts.fields import LocalTime, PhoneNumber, ResidentZoneName, Text


class CallPreferences(Value):
    """When a user is called: a local time in their zone, on or off, inside a window.

    Unlike messages on the bus, these bodies refuse unknown fields: a misspelt
    ``call_enable`` would otherwise fall back to the default without a word.

    The calling window bounds the retries of a failed call (and must contain the call
    time); without one, retries may run until the end of the user's local day.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    call_enabled: StrictBool = Field(default=True, description="Whether the user gets daily calls.")
    call_time: LocalTime = Field(description="Local call time, `HH:MM` or `HH:MM:SS`.")
    local_tz: ResidentZoneName = Field(
        description="The user's IANA time zone, e.g. `Asia/Kolkata` or `UTC`; not `localtime` "
        "(the server's), `posixrules`, `Factory`, nor a `posix/` or `right/` copy."
    )
    window_start: LocalTime | None = Field(
        default=None, description="Earliest local time of a retry (with `window_end`)."
    )
    window_end: LocalTime | None = Field(
        default=None,
        validate_default=True,
        description="Latest local time of a retry (with `window_start`).",
    )

    @field_validator("window_end")
    @classmethod
    def _window_holds_call_time(cls, end: time | None, info: ValidationInfo) -> time | None:
        # Fields validate in order, so the window's start and the call time are known
        # here (absent from ``info.data`` when they were invalid themselves).
        start, call_time = info.data.get("window_start"), info.data.get("call_time")
        if end is None:
            if start is not None:
                raise ValueError("a calling window needs both window_start and window_end")
            return end
        if start is None:
            if "window_start" in info.data:
                raise ValueError("a calling window needs both window_start and window_end")
            return end
        if start >= end:
            raise ValueError("must be after window_start")
        if call_time is not None and not start <= call_time <= end:
            raise ValueError("the calling window must contain call_time")
        return end


class NewUser(CallPreferences):
    """A user to call every day."""

    name: Text = Field(min_length=1, max_length=200, description="The user's name.")
    phone: PhoneNumber = Field(description="The number to call, E.164 (e.g. `+14155550123`).")
