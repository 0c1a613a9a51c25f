"""The answers of the webhooks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.values import CallStatus
from producers.schemas import Answer


class CallUpdated(Answer):
    """A status event of a call we placed, recorded (and applied when it moves it forward)."""

    success: Literal[True] = Field(description="The call is ours.")
    call_id: str = Field(description="Our call id.")
    status: CallStatus = Field(description="The call's status after the event.")
    outcome: Literal["applied", "ignored", "duplicate"] = Field(
        description="`applied`; `ignored`: the call is past this status already; "
        "`duplicate`: this event was received before."
    )
    retry: str | None = Field(description="The id of the retry it scheduled, if any.")
    message: str = Field(description="The outcome, for a person.")


class UnknownCall(Answer):
    """A status event for a call nobody knows: recorded, nothing else (as before)."""

    success: Literal[False] = Field(description="No such call.")
    error: Literal["Call not found"] = Field(description="Why.")
    outcome: Literal["unknown_call", "duplicate"] = Field(
        description="`unknown_call`; `duplicate`: this event was received before."
    )


class WebhookAccepted(Answer):
    """A finished call accepted: its job is queued."""

    job_id: str = Field(description="The job (`GET /api/jobs/{job_id}`).")
    conversation_id: str = Field(description="The conversation.")
    status: Literal["queued"] = Field(description="The job's first state.")


class WebhookDuplicate(Answer):
    """A call delivered before (for the same tenant): nothing new is queued."""

    job_id: str = Field(description="The first delivery's job.")
    conversation_id: str = Field(description="The conversation.")
    status: Literal["duplicate"] = Field(description="Always `duplicate`.")
    duplicate: Literal[True] = Field(description="Always true.")


class WebhookIgnored(Answer):
    """An event the pipelines do not process (`post_call_audio`, `call_initiation_failure`)."""

    status: Literal["ignored"] = Field(description="Always `ignored`.")
    type: str = Field(description="The event's type.")
