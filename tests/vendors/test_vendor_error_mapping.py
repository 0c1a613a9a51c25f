"""Vendor failures become TransientError / PermanentError (real clients, local stand-ins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from contracts import TranscriptTurn
from contracts.errors import NotReadyError, PermanentError, TransientError
from contracts.values import VectorRecord
from infra.settings import OpenAISettings, PineconeSettings
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder, build_openai_client
from infra.vendors.pinecone_index import PineconeVectorIndex, sanitize_metadata
from tests.standins.elevenlabs_server import ElevenLabsStandIn, conversation_body
from tests.standins.fixtures import PINECONE_STANDIN_DIMENSION
from tests.standins.openai_server import OpenAIStandIn
from tests.standins.pinecone_server import PineconeStandIn

TURNS = [TranscriptTurn(role="user", message="Call me back tomorrow please.")]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STATUS_CASES = [(429, TransientError), (500, TransientError), (401, PermanentError)]


# --- OpenAI -----------------------------------------------------------------------------


@pytest.fixture
def openai_analyzer(openai_standin: OpenAIStandIn) -> Iterator[OpenAIAnalyzer]:
    settings = OpenAISettings(
        api_key=SecretStr(openai_standin.api_key),
        base_url=openai_standin.base_url,
        max_retries=0,
        timeout_s=0.5,
    )
    client = build_openai_client(settings)
    try:
        yield OpenAIAnalyzer(client, "gpt-4o-mini")
    finally:
        client.close()


def test_the_analysis_request_uses_a_strict_schema_and_states_the_reference_time(
    openai_standin: OpenAIStandIn, openai_analyzer: OpenAIAnalyzer
) -> None:
    analysis = openai_analyzer.analyze(TURNS, reference_time=NOW, timezone="Europe/Paris")

    body = openai_standin.requests[-1].json()
    schema = body["response_format"]["json_schema"]
    assert schema["name"] == "call_analysis"
    assert schema["strict"] is True
    assert schema["schema"]["additionalProperties"] is False
    assert set(schema["schema"]["required"]) == set(schema["schema"]["properties"])
    assert "2026-06-01T14:00:00+02:00 (time zone Europe/Paris)" in body["messages"][1]["content"]
    assert analysis.analyzer == "openai:gpt-4o-mini"
    assert analysis.callback is not None


@pytest.mark.parametrize(("status", "error"), [*STATUS_CASES, (400, PermanentError)])
def test_openai_status_codes_map_to_transient_or_permanent(
    openai_standin: OpenAIStandIn,
    openai_analyzer: OpenAIAnalyzer,
    status: int,
    error: type[Exception],
) -> None:
    openai_standin.fail_next(status)

    with pytest.raises(error):
        openai_analyzer.analyze(TURNS, reference_time=NOW, timezone="UTC")


def test_an_openai_timeout_is_transient(
    openai_standin: OpenAIStandIn, openai_analyzer: OpenAIAnalyzer
) -> None:
    openai_standin.fail_next(200, delay_s=5)

    with pytest.raises(TransientError):
        openai_analyzer.analyze(TURNS, reference_time=NOW, timezone="UTC")


@pytest.mark.parametrize(
    "content",
    ["not json", '{"summary": "x"}', '{"summary": "x", "topics": [], "sentiment": "meh"}'],
)
def test_an_openai_reply_that_does_not_validate_is_transient(
    openai_standin: OpenAIStandIn, openai_analyzer: OpenAIAnalyzer, content: str
) -> None:
    openai_standin.next_content(content)

    with pytest.raises(TransientError):
        openai_analyzer.analyze(TURNS, reference_time=NOW, timezone="UTC")


def test_openai_embedding_failures_map_like_analysis_failures(
    openai_standin: OpenAIStandIn,
) -> None:
    settings = OpenAISettings(
        api_key=SecretStr("sk-wrong"), base_url=openai_standin.base_url, max_retries=0
    )
    client = build_openai_client(settings)
    try:
        embedder = OpenAIEmbedder(client, "text-embedding-3-small", 8)
        with pytest.raises(PermanentError):
            embedder.embed(["hello"])
        openai_standin.api_key = "sk-wrong"
        openai_standin.fail_next(429)
        with pytest.raises(TransientError):
            embedder.embed(["hello"])
        assert len(embedder.embed(["hello"])[0]) == 8
    finally:
        client.close()


# --- Pinecone ---------------------------------------------------------------------------


@pytest.fixture
def pinecone_index(pinecone_standin: PineconeStandIn) -> Iterator[PineconeVectorIndex]:
    settings = PineconeSettings(api_key=SecretStr(pinecone_standin.api_key), timeout_s=0.3)
    index = PineconeVectorIndex.from_settings(settings, host=pinecone_standin.url)
    try:
        yield index
    finally:
        index.close()


def _record(values: list[float]) -> VectorRecord:
    return VectorRecord(id="c1#summary", values=values, metadata={"kind": "summary"})


@pytest.mark.parametrize(("status", "error"), [*STATUS_CASES, (403, PermanentError)])
def test_pinecone_status_codes_map_to_transient_or_permanent(
    pinecone_standin: PineconeStandIn,
    pinecone_index: PineconeVectorIndex,
    status: int,
    error: type[Exception],
) -> None:
    # Retry-After: 0 keeps the SDK's own retries of 429/5xx instant; it still gives up.
    pinecone_standin.fail_next(status, times=10, headers={"Retry-After": "0"})

    with pytest.raises(error):
        pinecone_index.query("tenant-t1", [1.0] * PINECONE_STANDIN_DIMENSION, top_k=1)


def test_a_pinecone_timeout_is_transient(
    pinecone_standin: PineconeStandIn, pinecone_index: PineconeVectorIndex
) -> None:
    pinecone_standin.fail_next(200, times=10, delay_s=5)

    with pytest.raises(TransientError):
        pinecone_index.fetch("tenant-t1", ["c1#summary"])


def test_a_vector_of_the_wrong_dimension_is_permanent(pinecone_index: PineconeVectorIndex) -> None:
    with pytest.raises(PermanentError):
        pinecone_index.upsert("tenant-t1", [_record([1.0, 0.0])])


def test_pinecone_metadata_is_sanitised_to_its_types() -> None:
    clean = sanitize_metadata(
        {"kind": "summary", "n": 3, "ok": True, "none": None, "topics": ("a", 1), "d": {"b": 1}}
    )

    assert clean == {"kind": "summary", "n": 3, "ok": True, "topics": ["a", "1"], "d": '{"b": 1}'}


def test_sanitised_metadata_is_accepted_by_the_data_plane(
    pinecone_standin: PineconeStandIn, pinecone_index: PineconeVectorIndex
) -> None:
    record = VectorRecord(
        id="c1#summary",
        values=[1.0] * PINECONE_STANDIN_DIMENSION,
        metadata={"kind": "summary", "started_at": None, "extra": {"x": 1}},
    )

    pinecone_index.upsert("tenant-t1", [record])
    pinecone_index.ping()

    stored = pinecone_standin.namespaces["tenant-t1"]["c1#summary"]["metadata"]
    assert stored == {"kind": "summary", "extra": '{"x": 1}'}


# --- ElevenLabs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"), [*STATUS_CASES, (403, PermanentError), (503, TransientError)]
)
def test_elevenlabs_status_codes_map_to_transient_or_permanent(
    elevenlabs_standin: ElevenLabsStandIn,
    conversations: ElevenLabsConversations,
    status: int,
    error: type[Exception],
) -> None:
    elevenlabs_standin.fail_next(status)

    with pytest.raises(error):
        conversations.fetch("conv_1")


def test_an_unknown_conversation_is_permanent(conversations: ElevenLabsConversations) -> None:
    with pytest.raises(PermanentError):
        conversations.fetch("conv_unknown")


def test_a_wrong_api_key_is_permanent(elevenlabs_standin: ElevenLabsStandIn) -> None:
    elevenlabs_standin.add_conversation(conversation_body("conv_1", [("user", "hi")]))
    with httpx.Client(timeout=2) as client:
        source = ElevenLabsConversations(client, api_key="wrong", base_url=elevenlabs_standin.url)
        with pytest.raises(PermanentError):
            source.fetch("conv_1")


def test_an_elevenlabs_timeout_is_transient(
    elevenlabs_standin: ElevenLabsStandIn, conversations: ElevenLabsConversations
) -> None:
    elevenlabs_standin.fail_next(200, delay_s=5)

    with pytest.raises(TransientError):
        conversations.fetch("conv_1")


def test_a_conversation_answers_processing_until_it_is_done(
    elevenlabs_standin: ElevenLabsStandIn, conversations: ElevenLabsConversations
) -> None:
    body = conversation_body("conv_5", [("user", "hello")])
    elevenlabs_standin.add_conversation(body, processing_polls=2)

    statuses = [conversations.fetch("conv_5").status for _ in range(3)]

    assert statuses == ["processing", "processing", "done"]
    assert all(r.headers["xi-api-key"] == "xi-test" for r in elevenlabs_standin.requests)


def test_the_local_archive_is_not_ready_until_the_file_appears(tmp_path: Path) -> None:
    archive = LocalConversationArchive(tmp_path)

    with pytest.raises(NotReadyError):
        archive.fetch("conv_6")
    (tmp_path / "conv_6.json").write_text('{"conversation_id": "conv_6", "status"')
    with pytest.raises(TransientError):
        archive.fetch("conv_6")
    (tmp_path / "conv_6.json").write_text(json.dumps(conversation_body("conv_6", [("user", "hi")])))
    assert archive.fetch("conv_6").is_done
