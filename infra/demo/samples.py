"""The demo's sample calls (``samples.json``) and the payloads built from them.

Each sample is one finished call: general or health-check, in ElevenLabs' current
webhook shape or the older one (``{"data": {"transcript": {"messages": [...]}}}``),
with its transcript inline or (``inline: false``) only in a conversation file written
later, as the voice platform's API would serve it once processing is done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from contracts import HealthAnswer

SampleKind = Literal["general", "health_check"]


@dataclass(frozen=True)
class Sample:
    """One sample call."""

    conversation_id: str
    title: str
    kind: SampleKind
    shape: Literal["current", "legacy"]
    inline: bool
    minutes_ago: int
    duration_secs: int
    transcript: list[tuple[str, str]]
    answers: list[HealthAnswer]
    thread_id: str | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Sample:
        """Build a sample from its ``samples.json`` entry."""
        return cls(
            conversation_id=raw["conversation_id"],
            title=raw["title"],
            kind=raw["kind"],
            shape=raw["shape"],
            inline=raw["inline"],
            minutes_ago=int(raw["minutes_ago"]),
            duration_secs=int(raw["duration_secs"]),
            transcript=[(role, text) for role, text in raw["transcript"]],
            answers=[HealthAnswer.model_validate(a) for a in raw.get("answers", [])],
            thread_id=raw.get("thread_id"),
        )


def load_samples() -> list[Sample]:
    """The packaged sample calls."""
    text = resources.files("infra.demo").joinpath("samples.json").read_text("utf-8")
    return [Sample.from_json(raw) for raw in json.loads(text)]


def _turns(sample: Sample) -> list[dict[str, Any]]:
    return [
        {"role": role, "message": text, "time_in_call_secs": 8 * i, "tool_calls": []}
        for i, (role, text) in enumerate(sample.transcript)
    ]


def webhook_payload(sample: Sample, *, agent_id: str, now: int) -> dict[str, Any]:
    """The post-call webhook body of a sample, in the sample's shape."""
    started = now - sample.minutes_ago * 60
    if sample.shape == "legacy":
        legacy_roles = {"agent": "assistant", "user": "user"}
        return {
            "data": {
                "conversation_id": sample.conversation_id,
                "agent_id": agent_id,
                "transcript": {
                    "messages": [
                        {"role": legacy_roles[role], "content": text}
                        for role, text in sample.transcript
                    ]
                },
            }
        }
    data: dict[str, Any] = {
        "agent_id": agent_id,
        "conversation_id": sample.conversation_id,
        "status": "done",
        "metadata": {"start_time_unix_secs": started, "call_duration_secs": sample.duration_secs},
        "analysis": {"call_successful": "success"},
        "conversation_initiation_client_data": {
            "dynamic_variables": {"thread_id": sample.thread_id} if sample.thread_id else {}
        },
    }
    if sample.inline:
        data["transcript"] = _turns(sample)
    return {"type": "post_call_transcription", "event_timestamp": now, "data": data}


def conversation_document(sample: Sample, *, agent_id: str, now: int) -> dict[str, Any]:
    """The conversation as the voice platform's API serves it once processing is done."""
    return {
        "agent_id": agent_id,
        "conversation_id": sample.conversation_id,
        "status": "done",
        "transcript": _turns(sample),
        "metadata": {
            "start_time_unix_secs": now - sample.minutes_ago * 60,
            "call_duration_secs": sample.duration_secs,
        },
    }
