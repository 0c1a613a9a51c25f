"""ElevenLabs post-call webhooks: the signature, the payload models, the mapping to contracts.

The signature header is ``ElevenLabs-Signature: t=<unix seconds>,v0=<hex>`` where hex
is HMAC-SHA256(secret, ``"{t}.{raw_body}"``); while a secret is rotated the header may
carry several ``v0`` entries, and one matching is enough. Two payload shapes are
accepted: the current one (``{"type": "post_call_transcription", "data": {...,
"transcript": [...]}}``) and the older one without ``type`` whose transcript is
``{"messages": [{role, content}]}``. Models ignore unknown fields: ElevenLabs adds
fields over time. Every field the pipeline keeps is validated here with the contracts'
own types, so what is accepted can be stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import falcon
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from contracts import HealthCheckJobData, PostCallJobData, TranscriptTurn
from contracts.fields import LATEST, FiniteFloat, Identifier, Seconds, Text
from infra.store.records import AgentBinding, AgentKind

SIGNATURE_HEADER = "ElevenLabs-Signature"
MAX_TIMESTAMP_DIGITS = 12
TRANSCRIPTION = "post_call_transcription"

_ROLES: dict[str, Literal["agent", "user"]] = {
    "assistant": "agent",
    "agent": "agent",
    "ai": "agent",
    "user": "user",
    "caller": "user",
}


def _signature_error(detail: str) -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(title="Invalid webhook signature", description=detail)


def _parse_signature(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise _signature_error(f"missing {SIGNATURE_HEADER} header")
    timestamps: list[str] = []
    digests: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v0" and value:
            digests.append(value)
    # Unix seconds have 10 digits until 2286; a longer value is not a time (and a few
    # thousand digits would not even parse).
    timestamp = timestamps[0] if len(timestamps) == 1 else ""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise _signature_error(f"malformed {SIGNATURE_HEADER} header: expected t=<unix>,v0=<hex>")
    if not digests:
        raise _signature_error(f"malformed {SIGNATURE_HEADER} header: no v0=<hex> signature")
    return int(timestamp), digests


def verify_signature(
    header: str | None, body: bytes, *, secret: str, now: float, tolerance_s: float
) -> None:
    """Check a webhook's signature and its age, in constant time.

    Args:
        header: The ``ElevenLabs-Signature`` header value, if any.
        body: The raw request body, exactly as received.
        secret: The webhook's HMAC secret.
        now: The current unix time.
        tolerance_s: The largest accepted distance between ``t`` and ``now``, either way.

    Several ``v0`` entries (a secret being rotated) pass when any one matches; each is
    compared, so the time taken does not tell which.

    Raises:
        falcon.HTTPUnauthorized: Missing, malformed, mismatched, too old or too far in
            the future.
    """
    timestamp, digests = _parse_signature(header)
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
    matched = False
    for digest in digests:
        # Bytes, not str: compare_digest raises TypeError on non-ASCII str (a crafted header).
        matched |= hmac.compare_digest(expected, digest.lower().encode())
    if not matched:
        raise _signature_error("signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise _signature_error(f"signature timestamp is more than {tolerance_s:g} s from now")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


LATEST_UNIX_S = int(LATEST.timestamp())
"""Unix times must lie before 2200, as every datetime a contract carries."""

UnixSeconds = Annotated[int, Field(ge=0, lt=LATEST_UNIX_S)]


def _number_as_text(value: Any) -> Any:
    # Ids in dynamic variables are often sent as numbers.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class WebhookTurn(_Model):
    """One transcript turn, in either shape (``message`` or the older ``content``).

    The role is kept as sent: a role that is neither the agent's nor the caller's (a
    system or tool turn, or a name ElevenLabs adds later) drops that turn when mapping,
    never the call — ElevenLabs does not redeliver a rejected webhook.
    """

    role: Text = Field(description="Who spoke, as the platform names it.")
    message: Text | None = Field(default=None, description="What was said.")
    content: Text | None = Field(default=None, description="What was said (older shape).")
    time_in_call_secs: FiniteFloat | None = Field(
        default=None, ge=0, description="Seconds into the call."
    )

    @property
    def speaker(self) -> Literal["agent", "user"] | None:
        """``agent`` or ``user``; None for any other role."""
        return _ROLES.get(self.role.strip().lower())

    @property
    def text(self) -> str:
        """The turn's words, whichever field carried them ('' when none did)."""
        return (self.message if self.message is not None else self.content or "").strip()


class LegacyTranscript(_Model):
    """The older transcript shape: ``{"messages": [...]}``."""

    messages: list[WebhookTurn] = Field(default_factory=list, description="The turns.")


class PhoneCall(_Model):
    """The telephony leg of a call, when it came over a phone line."""

    external_number: Annotated[Text | None, BeforeValidator(_number_as_text)] = Field(
        default=None, description="The caller's number, as the platform wrote it."
    )


class CallMetadata(_Model):
    """The call's metadata block."""

    phone_call: PhoneCall | None = Field(default=None, description="The phone line, if any.")
    start_time_unix_secs: UnixSeconds | None = Field(default=None, description="Call start.")
    call_duration_secs: Seconds | None = Field(default=None, description="Call length.")


class DynamicVariables(_Model):
    """The dynamic variables the pipeline reads (others are ignored)."""

    thread_id: Annotated[Identifier | None, BeforeValidator(_number_as_text)] = Field(
        default=None, description="The checkpoint thread of a health-check call."
    )
    call_type: Annotated[Text | None, BeforeValidator(_number_as_text)] = Field(
        default=None, description="`health_check` marks a health-check call."
    )


class InitiationData(_Model):
    """What the caller's client passed when the call started."""

    dynamic_variables: DynamicVariables = Field(
        default_factory=DynamicVariables, description="Variables."
    )


class CallData(_Model):
    """The ``data`` object of a post-call transcription webhook."""

    agent_id: Identifier = Field(description="The voice agent.")
    conversation_id: Identifier = Field(description="The conversation id.")
    status: Text | None = Field(default=None, description="The call status, e.g. `done`.")
    transcript: list[WebhookTurn] | LegacyTranscript | None = Field(
        default=None, description="The transcript, in either shape."
    )
    metadata: CallMetadata | None = Field(default=None, description="Timing of the call.")
    analysis: dict[str, Any] | None = Field(default=None, description="ElevenLabs' analysis.")
    conversation_initiation_client_data: InitiationData | None = Field(
        default=None, description="Client data, holding the dynamic variables."
    )

    @property
    def turns(self) -> list[TranscriptTurn] | None:
        """The transcript as contract turns; empty and non-speech turns dropped.

        None when the webhook carried no transcript (the pipeline then fetches it).
        """
        if self.transcript is None:
            return None
        raw = (
            self.transcript.messages
            if isinstance(self.transcript, LegacyTranscript)
            else self.transcript
        )
        return [
            TranscriptTurn(role=speaker, message=t.text, time_in_call_secs=t.time_in_call_secs)
            for t in raw
            if t.text and (speaker := t.speaker) is not None
        ]

    @property
    def dynamic_variables(self) -> DynamicVariables:
        """The dynamic variables (none set when none were sent)."""
        data = self.conversation_initiation_client_data
        return data.dynamic_variables if data is not None else DynamicVariables()


class TranscriptionEvent(_Model):
    """A post-call transcription webhook (current or older shape)."""

    type: Text = Field(default=TRANSCRIPTION, description="The event type.")
    event_timestamp: UnixSeconds | None = Field(default=None, description="When it was sent.")
    data: CallData = Field(description="The call.")


class EventHeader(_Model):
    """Just the event type, to acknowledge the events the pipeline does not process."""

    type: Text = Field(default=TRANSCRIPTION, description="The event type.")


def job_kind(binding: AgentBinding, data: CallData) -> AgentKind:
    """``health_check`` when the agent is bound so or the call says so; else ``general``."""
    if binding.kind == "health_check":
        return "health_check"
    if data.dynamic_variables.call_type == "health_check":
        return "health_check"
    return "general"


def pipeline_of(kind: AgentKind) -> str:
    """The job kind (pipeline) of a call of this kind."""
    return "post_call" if kind == "general" else "health_check"


def to_contract(
    data: CallData, *, binding: AgentBinding, kind: AgentKind, job_id: str
) -> PostCallJobData | HealthCheckJobData:
    """Map a webhook's call to the first contract of its pipeline."""
    metadata = data.metadata or CallMetadata()
    common = {
        "job_id": job_id,
        "tenant_id": binding.tenant.id,
        "conversation_id": data.conversation_id,
        "agent_id": data.agent_id,
        # Of either kind: erasing a person finds their calls by it (``forget user``).
        "caller_number": e164(metadata.phone_call.external_number if metadata.phone_call else None),
    }
    if kind == "health_check":
        thread_id = data.dynamic_variables.thread_id or data.conversation_id
        return HealthCheckJobData(**common, thread_id=thread_id)
    started_at = (
        datetime.fromtimestamp(metadata.start_time_unix_secs, tz=UTC)
        if metadata.start_time_unix_secs is not None
        else None
    )
    return PostCallJobData(
        **common,
        transcript=data.turns,
        started_at=started_at,
        duration_secs=metadata.call_duration_secs,
        call_status=data.status,
        timezone=binding.tenant.timezone,
    )


def e164(number: str | None) -> str | None:
    """The number in E.164 when it can be read as one, else None.

    Spaces, dashes, dots and parentheses are dropped; a number without a leading ``+``
    cannot be told from a national one, so it is not guessed at. A number that is not
    usable only costs the callback its number (it becomes ``unplaceable``), never the
    webhook.
    """
    if number is None:
        return None
    compact = re.sub(r"[\s().-]", "", number)
    return compact if re.fullmatch(r"\+[1-9][0-9]{7,14}", compact) else None
