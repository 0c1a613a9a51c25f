"""The TranscriptSource port's contract: the local archive and ElevenLabs (stand-in)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.errors import PermanentError
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from tests.standins.elevenlabs_server import ElevenLabsStandIn, conversation_body


@dataclass
class World:
    """A source and how to make a conversation available in it."""

    source: ElevenLabsConversations | LocalConversationArchive
    publish: Callable[[dict[str, Any]], None]


@pytest.fixture(params=["local", "elevenlabs"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "local":

        def write(body: dict[str, Any]) -> None:
            (tmp_path / f"{body['conversation_id']}.json").write_text(json.dumps(body))

        yield World(LocalConversationArchive(tmp_path), write)
        return
    standin: ElevenLabsStandIn = request.getfixturevalue("elevenlabs_standin")
    with httpx.Client(timeout=5) as client:
        source = ElevenLabsConversations(client, api_key=standin.api_key, base_url=standin.url)
        yield World(source, standin.add_conversation)


def test_a_done_conversation_maps_to_a_snapshot_without_tool_turns(world: World) -> None:
    world.publish(
        conversation_body(
            "conv_1",
            [("agent", "Hello!"), ("agent", None), ("user", "Call me back tomorrow.")],
            duration_secs=61,
        )
    )

    snapshot = world.source.fetch("conv_1")

    assert snapshot.is_done
    assert snapshot.conversation_id == "conv_1"
    assert [(t.role, t.message) for t in snapshot.transcript] == [
        ("agent", "Hello!"),
        ("user", "Call me back tomorrow."),
    ]
    assert snapshot.transcript[1].time_in_call_secs == 10
    assert snapshot.duration_secs == 61


def test_a_conversation_still_processing_is_not_done(world: World) -> None:
    world.publish(conversation_body("conv_2", [], status="processing"))

    snapshot = world.source.fetch("conv_2")

    assert not snapshot.is_done
    assert snapshot.status == "processing"


def test_a_failed_conversation_is_a_permanent_error(world: World) -> None:
    world.publish(conversation_body("conv_3", [("agent", "Hi")], status="failed"))

    with pytest.raises(PermanentError):
        world.source.fetch("conv_3")


def test_an_id_that_could_escape_the_path_is_refused(world: World) -> None:
    with pytest.raises(PermanentError):
        world.source.fetch("../etc/passwd")
