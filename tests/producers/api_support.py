"""Builders and doubles shared by the producer tests: signed webhooks and publishers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from falcon import testing

from contracts.errors import TransientError
from infra.bus.publishing import Envelope
from infra.demo import signing

SECRET = "whsec-test-secret"
ADMIN_TOKEN = "admin-token-for-tests"
NOW = 1_780_000_000
TOLERANCE_S = 1800
GENERAL_AGENT = "agent_general"
HEALTH_AGENT = "agent_health"
WEBHOOK = "/api/webhooks/elevenlabs/call-ended"
PROBLEM_JSON = "application/problem+json"


def sign(body: bytes, *, at: int = NOW, secret: str = SECRET) -> str:
    """The ``ElevenLabs-Signature`` header of ``body`` signed at ``at``."""
    return signing.sign(secret, body, timestamp=at)


def sign_rotating(body: bytes, secrets: Sequence[str], *, at: int = NOW) -> str:
    """One ``t=`` and a ``v0=`` per secret, as sent while a secret is rotated."""
    digests = [sign(body, at=at, secret=secret).split(",v0=")[1] for secret in secrets]
    return ",".join([f"t={at}", *(f"v0={digest}" for digest in digests)])


def current_payload(
    conversation_id: str = "conv_1", agent_id: str = GENERAL_AGENT, **data: Any
) -> dict[str, Any]:
    """A ``post_call_transcription`` webhook in the current shape; ``data`` overrides fields."""
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "conversation_id": conversation_id,
        "status": "done",
        "transcript": [
            {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
            {"role": "agent", "message": None, "time_in_call_secs": 2, "tool_calls": [{}]},
            {"role": "user", "message": "Please call me back tomorrow.", "time_in_call_secs": 4},
        ],
        "metadata": {"start_time_unix_secs": NOW - 300, "call_duration_secs": 95, "cost": 12},
        "analysis": {"call_successful": "success"},
        "conversation_initiation_client_data": {"dynamic_variables": {"user_name": "Ada"}},
        "a_field_added_next_year": {"ignored": True},
    }
    return {
        "type": "post_call_transcription",
        "event_timestamp": NOW,
        "data": fields | data,
    }


def legacy_payload(
    conversation_id: str = "conv_old", agent_id: str = GENERAL_AGENT
) -> dict[str, Any]:
    """The older webhook shape: no ``type``, transcript as ``{"messages": [...]}``."""
    return {
        "data": {
            "conversation_id": conversation_id,
            "agent_id": agent_id,
            "transcript": {
                "messages": [
                    {"role": "assistant", "content": "Good morning."},
                    {"role": "caller", "content": "Hi, I have a billing question."},
                    {"role": "ai", "content": ""},
                ]
            },
        }
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The JSON body of a payload."""
    return json.dumps(payload).encode()


def signed_headers(body: bytes, *, at: int = NOW) -> dict[str, str]:
    """Headers of a correctly signed webhook delivery."""
    return {"ElevenLabs-Signature": sign(body, at=at), "Content-Type": "application/json"}


@dataclass
class FailingPublisher:
    """A publisher whose broker is down: every publish raises ``TransientError``."""

    attempts: list[Envelope] = field(default_factory=list)

    def publish(self, envelope: Envelope) -> str:
        """Record the attempt and fail like an unreachable Redis."""
        self.attempts.append(envelope)
        raise TransientError("redis unreachable: connection refused")


def post_body(
    client: testing.TestClient, body: bytes, headers: dict[str, str] | None = None
) -> testing.Result:
    """POST a correctly signed ``body`` to the webhook; ``headers`` are added."""
    return client.simulate_post(WEBHOOK, body=body, headers=signed_headers(body) | (headers or {}))


def post(
    client: testing.TestClient, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> testing.Result:
    """POST ``payload`` as a correctly signed webhook; ``headers`` are added."""
    return post_body(client, encode(payload), headers)


def assert_problem(result: testing.Result, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 answer with ``status``; return its document."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == PROBLEM_JSON
    document: dict[str, Any] = result.json
    assert document["status"] == status
    assert document["title"]
    return document


def error_fields(document: dict[str, Any]) -> list[str]:
    """The ``field`` of every entry of a 422's ``errors``."""
    return [str(error["field"]) for error in document["errors"]]
