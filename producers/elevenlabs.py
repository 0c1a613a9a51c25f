"""ElevenLabs post-call webhooks: the signature, the payload models, the mapping to contracts.

The signature header is ``ElevenLabs-Signature: t=<unix seconds>,v0=<hex>`` where hex
is HMAC-SHA256(secret, ``"{t}.{raw_body}"``). Two payload shapes are accepted: the
current one (``{"type": "post_call_transcription", "data": {..., "transcript": [...]}}``)
and the older one without ``type`` whose transcript is ``{"messages": [{role,
content}]}``. Models ignore unknown fields: ElevenLabs adds fields over time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Literal

import falcon
from pydantic import BaseModel, ConfigDict, Field

from contracts import HealthCheckJobData, PostCallJobData, TranscriptTurn
from infra.store.records import AgentBinding, AgentKind
from producers.errors import unprocessable

SIGNATURE_HEADER = "ElevenLabs-Signature"
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


def _parse_signature(header: str | None) -> tuple[int, str]:
    if not header:
        raise _signature_error(f"missing {SIGNATURE_HEADER} header")
    parts = dict(item.strip().partition("=")[::2] for item in header.split(","))
    timestamp, digest = parts.get("t", ""), parts.get("v0", "")
    if not (timestamp.isascii() and timestamp.isdigit()) or not digest:
        raise _signature_error(f"malformed {SIGNATURE_HEADER} header: expected t=<unix>,v0=<hex>")
    return int(timestamp), digest


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

    Raises:
        falcon.HTTPUnauthorized: Missing, malformed, mismatched, too old or too far in
            the future.
    """
    timestamp, digest = _parse_signature(header)
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str (a crafted header).
    if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
        raise _signature_error("signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise _signature_error(f"signature timestamp is more than {tolerance_s:g} s from now")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class WebhookTurn(_Model):
    """One transcript turn, in either shape (``message`` or the older ``content``).

    The role is kept as sent: a role that is neither the agent's nor the caller's (a
    system or tool turn, or a name ElevenLabs adds later) drops that turn when mapping,
    never the call — ElevenLabs does not redeliver a rejected webhook.
    """

    role: str = Field(description="Who spoke, as the platform names it.")
    message: str | None = Field(default=None, description="What was said.")
    content: str | None = Field(default=None, description="What was said (older shape).")
    time_in_call_secs: float | None = Field(default=None, description="Seconds into the call.")

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


class CallMetadata(_Model):
    """The call's metadata block."""

    start_time_unix_secs: int | None = Field(default=None, description="Call start.")
    call_duration_secs: int | None = Field(default=None, description="Call length.")


class InitiationData(_Model):
    """What the caller's client passed when the call started."""

    dynamic_variables: dict[str, Any] = Field(default_factory=dict, description="Variables.")


class CallData(_Model):
    """The ``data`` object of a post-call transcription webhook."""

    agent_id: str = Field(description="The voice agent.")
    conversation_id: str = Field(min_length=1, description="The conversation id.")
    status: str | None = Field(default=None, description="The call status, e.g. `done`.")
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
    def dynamic_variables(self) -> dict[str, Any]:
        """The dynamic variables ({} when none were sent)."""
        data = self.conversation_initiation_client_data
        return data.dynamic_variables if data is not None else {}


class TranscriptionEvent(_Model):
    """A post-call transcription webhook (current or older shape)."""

    type: str = Field(default=TRANSCRIPTION, description="The event type.")
    event_timestamp: int | None = Field(default=None, description="When it was sent.")
    data: CallData = Field(description="The call.")


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode the body as a JSON object.

    Raises:
        ProblemError: 422 when the body is not valid JSON or not an object.
    """
    try:
        document = json.loads(body)
    except ValueError as error:
        raise unprocessable("body is not valid JSON") from error
    if not isinstance(document, dict):
        raise unprocessable("body must be a JSON object")
    return document


def event_type(document: dict[str, Any]) -> str:
    """The event's ``type``; the older shape has none and is a transcription."""
    value = document.get("type", TRANSCRIPTION)
    return value if isinstance(value, str) else str(value)


def job_kind(binding: AgentBinding, data: CallData) -> AgentKind:
    """``health_check`` when the agent is bound so or the call says so; else ``general``."""
    if binding.kind == "health_check":
        return "health_check"
    if str(data.dynamic_variables.get("call_type", "")) == "health_check":
        return "health_check"
    return "general"


def to_contract(
    data: CallData, *, binding: AgentBinding, kind: AgentKind, job_id: str
) -> PostCallJobData | HealthCheckJobData:
    """Map a webhook's call to the first contract of its pipeline."""
    common = {
        "job_id": job_id,
        "tenant_id": binding.tenant.id,
        "conversation_id": data.conversation_id,
        "agent_id": data.agent_id,
    }
    if kind == "health_check":
        thread_id = data.dynamic_variables.get("thread_id") or data.conversation_id
        return HealthCheckJobData(**common, thread_id=str(thread_id))
    metadata = data.metadata or CallMetadata()
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
