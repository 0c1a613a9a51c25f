"""The TranscriptSource port's contract: the local archive, ElevenLabs (stand-in) and the fake."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import PostCallJobData, TranscriptTurn
from contracts.errors import PermanentError
from contracts.values import ConversationSnapshot
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from tests.builders import make_post_call_job
from tests.fakes import FakeTranscriptSource
from tests.standins.elevenlabs_server import ElevenLabsStandIn, conversation_body

SourceUnderTest = ElevenLabsConversations | LocalConversationArchive | FakeTranscriptSource

VENDORS: dict[type[SourceUnderTest], str | None] = {
    ElevenLabsConversations: "elevenlabs",
    LocalConversationArchive: None,
    FakeTranscriptSource: None,
}
"""The vendor whose throttle each adapter holds (None: a local adapter, no throttle)."""


@dataclass
class World:
    """A source and how to make a conversation (in the API's JSON shape) available in it."""

    source: SourceUnderTest
    publish: Callable[[dict[str, Any]], None]


def _script(fake: FakeTranscriptSource, body: dict[str, Any]) -> None:
    """Script the fake with the snapshot of a conversation the platform reports as ``body``.

    The fake plays snapshots, not API bodies: tool turns (no message) have no snapshot
    form, so they are left out here, and the tests of that mapping skip the fake.
    """
    turns = [TranscriptTurn.model_validate(turn) for turn in body["transcript"] if turn["message"]]
    snapshot = ConversationSnapshot(
        conversation_id=body["conversation_id"],
        status=body["status"],
        transcript=turns,
        duration_secs=body["metadata"]["call_duration_secs"],
    )
    fake.script(body["conversation_id"], snapshot)


@pytest.fixture(params=["local", "elevenlabs", "fake"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "fake":
        fake = FakeTranscriptSource()
        yield World(fake, lambda body: _script(fake, body))
        return
    if request.param == "local":

        def write(body: dict[str, Any]) -> None:
            (tmp_path / f"{body['conversation_id']}.json").write_text(json.dumps(body))

        yield World(LocalConversationArchive(tmp_path), write)
        return
    standin: ElevenLabsStandIn = request.getfixturevalue("elevenlabs_standin")
    with httpx.Client(timeout=5) as client:
        source = ElevenLabsConversations(client, api_key=standin.api_key, base_url=standin.url)
        yield World(source, standin.add_conversation)


def _is_fake(world: World) -> bool:
    return isinstance(world.source, FakeTranscriptSource)


def test_a_done_conversation_is_a_done_snapshot_with_its_turns_and_duration(
    world: World,
) -> None:
    world.publish(
        conversation_body(
            "conv_1", [("agent", "Hello!"), ("user", "Call me back tomorrow.")], duration_secs=61
        )
    )

    snapshot = world.source.fetch("conv_1")

    assert snapshot.is_done
    assert snapshot.conversation_id == "conv_1"
    assert [(t.role, t.message, t.time_in_call_secs) for t in snapshot.transcript] == [
        ("agent", "Hello!", 0),
        ("user", "Call me back tomorrow.", 5),
    ]
    assert snapshot.duration_secs == 61


def test_tool_turns_are_left_out_of_the_transcript(world: World) -> None:
    if _is_fake(world):
        pytest.skip("the fake is scripted with snapshots: it never sees an API body to map")
    world.publish(
        conversation_body(
            "conv_1",
            [("agent", "Hello!"), ("agent", None), ("user", "Call me back tomorrow.")],
            duration_secs=61,
        )
    )

    snapshot = world.source.fetch("conv_1")

    assert [(t.role, t.message) for t in snapshot.transcript] == [
        ("agent", "Hello!"),
        ("user", "Call me back tomorrow."),
    ]
    assert snapshot.transcript[1].time_in_call_secs == 10


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
    if _is_fake(world):
        pytest.skip("the fake has no path or URL an id could escape")
    with pytest.raises(PermanentError):
        world.source.fetch("../etc/passwd")


@pytest.mark.parametrize("conversation_id", ["conv.2026-03-02", "tenant:conv_7", "a..b"])
def test_every_conversation_id_a_call_contract_accepts_can_be_fetched(
    world: World, conversation_id: str
) -> None:
    job: PostCallJobData = make_post_call_job(conversation_id=conversation_id, transcript=None)
    world.publish(conversation_body(job.conversation_id, [("user", "Hello?")]))

    snapshot = world.source.fetch(job.conversation_id)

    assert (snapshot.conversation_id, snapshot.is_done) == (conversation_id, True)


def test_the_source_names_the_vendor_whose_throttle_it_holds(world: World) -> None:
    assert world.source.vendor == VENDORS[type(world.source)]
