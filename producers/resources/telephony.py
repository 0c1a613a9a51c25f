"""``POST /api/webhooks/callkaro``: the telephony provider's call status webhooks.

Read the raw body once (bounded), verify its HMAC (``infra.vendors.telephony_signing``:
constant time, and a time window when the header carries a timestamp), parse it, and
apply it to the call book in one transaction:

- every event is recorded (``call_events``), including those that change nothing;
- a repeated event — the same call and status, however often it is delivered — is
  answered ``duplicate`` and changes nothing;
- only forward transitions apply: a late ``ringing`` after ``completed`` is
  ``ignored``;
- a daily call that failed, was busy or went unanswered gets its retry scheduled.

The answer keeps the old service's shape (``success``, ``call_id``, ``message``) and
adds ``status`` and ``outcome``. An event for a call we do not know is recorded and
answered 200 with ``success: false``, as before: the provider would only retry it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import falcon
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from contracts.fields import AwareDatetime, Identifier, Seconds, Text
from contracts.values import ProviderCallStatus
from infra.logs import bind_context, get_logger
from infra.store.protocols import OutboundCallBook
from infra.store.records import TelephonyEvent
from infra.vendors import telephony_signing
from producers.errors import unprocessable
from producers.operations import CALLKARO, operation, returns
from producers.payloads import parse_document, validate
from producers.request_metrics import webhook_received, webhook_settled
from producers.resources.webhooks import read_body, require_secret
from producers.schemas.intake import CallUpdated, UnknownCall

_log = get_logger(__name__)

SOURCE = "callkaro"


def _utc_if_naive(value: Any) -> Any:
    """A timestamp without offset is read as UTC (the provider's docs show none)."""
    if isinstance(value, str) and value and "T" in value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _whole_seconds(value: Any) -> Any:
    return round(value) if isinstance(value, float) else value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class EventMetadata(_Model):
    """What we sent with the call, echoed back by the provider."""

    call_id: Identifier | None = Field(default=None, description="Our call id.")


class StatusEvent(_Model):
    """A call status webhook (CallKaro's shape)."""

    call_id: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="The provider's call id."
    )
    status: ProviderCallStatus = Field(description="The call's new status.")
    metadata: EventMetadata | None = Field(default=None, description="Our metadata.")
    duration: Annotated[Seconds | None, BeforeValidator(_whole_seconds)] = Field(
        default=None, description="The call's length in seconds, once it ended."
    )
    error_message: Annotated[Text, Field(max_length=2000)] | None = Field(
        default=None, description="Why the call failed."
    )
    timestamp: Annotated[AwareDatetime | None, BeforeValidator(_utc_if_naive)] = Field(
        default=None, description="When it happened (ISO 8601)."
    )

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_object(cls, value: Any) -> Any:
        # Other keys of the metadata (user ids, names) are ours and not needed here.
        return {"call_id": value.get("call_id")} if isinstance(value, dict) else value


class TelephonyWebhook:
    """The telephony provider's status webhook.

    Args:
        book: Applies the events.
        secret: The webhooks' HMAC secret; None answers 503 until one is configured.
        tolerance_s: Largest accepted age (and future skew) of a timestamped signature.
        max_body_bytes: Larger bodies get 413.
        max_json_depth: Deeper JSON gets 422.
        clock: Current unix time.
    """

    def __init__(
        self,
        *,
        book: OutboundCallBook,
        secret: str | None,
        tolerance_s: float,
        max_body_bytes: int,
        max_json_depth: int,
        clock: Callable[[], float],
    ) -> None:
        self._book = book
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth
        self._clock = clock

    @operation(
        "receiveCallStatus",
        summary="A call's status, from the telephony provider",
        tag="intake",
        access=CALLKARO,
        body=StatusEvent,
        answers=[
            returns(200, "The event was recorded, whatever it did.", CallUpdated, UnknownCall)
        ],
        problems={422: "the event names no call (neither `call_id` nor `metadata.call_id`)"},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Record one status event and apply it when it moves its call forward.

        Every event is recorded; a repeat of a call's status changes nothing
        (``duplicate``), nor does a late one (``ignored``); a daily call that ended
        ``failed``, ``no_answer`` or ``busy`` gets its retry scheduled.
        """
        webhook_received(req, SOURCE)
        body = read_body(req, self._max_body_bytes)
        secret = require_secret(
            self._secret, "SWITCHBOARD_CALLKARO__WEBHOOK_SECRET (or CALLKARO_WEBHOOK_SECRET)"
        )
        now = self._clock()
        try:
            telephony_signing.verify(
                secret,
                req.get_header(telephony_signing.SIGNATURE_HEADER),
                body,
                now=now,
                tolerance_s=self._tolerance_s,
            )
        except telephony_signing.SignatureError as error:
            raise falcon.HTTPUnauthorized(
                title="Invalid signature",
                description=str(error),
                challenges=["HMAC-SHA256"],
            ) from error
        document = parse_document(body, max_depth=self._max_json_depth)
        event = validate(StatusEvent, document)
        ours = event.metadata.call_id if event.metadata else None
        if event.call_id is None and ours is None:
            raise unprocessable(
                "the event names no call: send call_id or metadata.call_id", field="call_id"
            )
        with bind_context(correlation_id=ours or event.call_id):
            outcome = self._book.apply_event(
                TelephonyEvent(
                    event_key=_event_key(event.call_id or ours or "", event.status),
                    status=event.status,
                    call_id=ours,
                    provider_call_id=event.call_id,
                    occurred_at=event.timestamp or datetime.fromtimestamp(now, tz=UTC),
                    duration_secs=event.duration,
                    error=event.error_message,
                    payload=document,
                )
            )
            call = outcome.call
            _log.info("telephony event", status=event.status, outcome=outcome.outcome)
            _settle(req, outcome.outcome)
            if call is None:
                resp.media = UnknownCall(
                    success=False, error="Call not found", outcome=outcome.outcome
                ).media()
                return
            resp.media = CallUpdated(
                success=True,
                call_id=call.id,
                status=call.status,
                outcome=outcome.outcome,
                retry=None if outcome.retry is None else outcome.retry.id,
                message=_MESSAGES[outcome.outcome],
            ).media()


def _settle(req: falcon.Request, outcome: str) -> None:
    if outcome == "applied":
        webhook_settled(req, "accepted")
    elif outcome == "unknown_call":
        webhook_settled(req, "rejected", "unknown_call")
    elif outcome == "duplicate":
        webhook_settled(req, "duplicate")
    else:
        webhook_settled(req, "ignored")


_MESSAGES = {
    "applied": "Call updated successfully",
    "ignored": "Call already past this status; nothing changed",
    "duplicate": "Event already received; nothing changed",
    "unknown_call": "Call not found",
}


def _event_key(call: str, status: str) -> str:
    """One event per call and status: a call never returns to a status it left."""
    digest = hashlib.sha256(f"{call}\x00{status}".encode()).hexdigest()
    return f"callkaro:{digest}"
