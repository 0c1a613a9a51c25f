"""Readiness pings of the real vendor adapters, and the probes the wiring exposes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from qdrant_client import QdrantClient

from contracts.errors import PermanentError, TransientError
from infra.settings import OpenAISettings, Settings, load_settings
from infra.vendors.elevenlabs import ElevenLabsConversations
from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder, build_openai_client
from infra.vendors.qdrant_index import QdrantVectorIndex
from infra.vendors.wiring import Adapters, Probe
from tests.standins.elevenlabs_server import ElevenLabsStandIn, conversation_body
from tests.standins.fixtures import PINECONE_STANDIN_DIMENSION
from tests.standins.openai_server import OpenAIStandIn
from tests.standins.pinecone_server import PineconeStandIn
from tests.standins.server_base import Reply, Request, StandInServer

FAILURES = [(401, PermanentError), (403, PermanentError), (500, TransientError)]


def _closed_port() -> int:
    # Bind then release a port: nothing listens there for the rest of the test.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- OpenAI -----------------------------------------------------------------------------


@pytest.fixture
def openai_adapters(
    openai_standin: OpenAIStandIn,
) -> Iterator[tuple[OpenAIAnalyzer, OpenAIEmbedder]]:
    settings = OpenAISettings(
        api_key=SecretStr(openai_standin.api_key),
        base_url=openai_standin.base_url,
        max_retries=0,
        timeout_s=0.5,
    )
    client = build_openai_client(settings)
    try:
        yield (
            OpenAIAnalyzer(client, "gpt-4o-mini"),
            OpenAIEmbedder(client, "text-embedding-3-small", 8),
        )
    finally:
        client.close()


def test_openai_pings_retrieve_each_adapters_model(
    openai_standin: OpenAIStandIn, openai_adapters: tuple[OpenAIAnalyzer, OpenAIEmbedder]
) -> None:
    analyzer, embedder = openai_adapters

    analyzer.ping()
    embedder.ping()

    sent = [(request.method, request.path) for request in openai_standin.requests]
    assert sent == [
        ("GET", "/v1/models/gpt-4o-mini"),
        ("GET", "/v1/models/text-embedding-3-small"),
    ]
    assert openai_standin.requests[0].headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(("status", "error"), [*FAILURES, (404, PermanentError)])
def test_an_openai_ping_failure_maps_to_transient_or_permanent(
    openai_standin: OpenAIStandIn,
    openai_adapters: tuple[OpenAIAnalyzer, OpenAIEmbedder],
    status: int,
    error: type[Exception],
) -> None:
    analyzer, embedder = openai_adapters
    openai_standin.fail_next(status, times=2, path_prefix="/v1/models/")

    with pytest.raises(error, match=str(status)):
        analyzer.ping()
    with pytest.raises(error, match=str(status)):
        embedder.ping()


def test_an_openai_ping_with_a_wrong_key_is_permanent(
    openai_standin: OpenAIStandIn, openai_adapters: tuple[OpenAIAnalyzer, OpenAIEmbedder]
) -> None:
    openai_standin.api_key = "sk-rotated"

    with pytest.raises(PermanentError, match="401"):
        openai_adapters[0].ping()


def test_an_openai_ping_timeout_is_transient(
    openai_standin: OpenAIStandIn, openai_adapters: tuple[OpenAIAnalyzer, OpenAIEmbedder]
) -> None:
    openai_standin.fail_next(200, delay_s=5)

    with pytest.raises(TransientError):
        openai_adapters[0].ping()


# --- ElevenLabs -------------------------------------------------------------------------


def test_the_elevenlabs_ping_lists_one_conversation_with_the_key(
    elevenlabs_standin: ElevenLabsStandIn, conversations: ElevenLabsConversations
) -> None:
    elevenlabs_standin.add_conversation(conversation_body("conv_1", [("user", "hi")]))
    elevenlabs_standin.add_conversation(conversation_body("conv_2", [("user", "hi")]))

    conversations.ping()

    request = elevenlabs_standin.requests[-1]
    assert (request.method, request.path) == ("GET", "/v1/convai/conversations")
    assert request.query == {"page_size": ["1"]}
    assert request.headers["xi-api-key"] == "xi-test"


@pytest.mark.parametrize(("status", "error"), [*FAILURES, (429, TransientError)])
def test_an_elevenlabs_ping_failure_maps_to_transient_or_permanent(
    elevenlabs_standin: ElevenLabsStandIn,
    conversations: ElevenLabsConversations,
    status: int,
    error: type[Exception],
) -> None:
    elevenlabs_standin.fail_next(status)

    with pytest.raises(error, match=str(status)):
        conversations.ping()


def test_an_elevenlabs_ping_with_a_wrong_key_is_permanent(
    elevenlabs_standin: ElevenLabsStandIn, conversations: ElevenLabsConversations
) -> None:
    elevenlabs_standin.api_key = "xi-rotated"

    with pytest.raises(PermanentError, match="401"):
        conversations.ping()


def test_an_elevenlabs_ping_timeout_is_transient(
    elevenlabs_standin: ElevenLabsStandIn, conversations: ElevenLabsConversations
) -> None:
    elevenlabs_standin.fail_next(200, delay_s=5)

    with pytest.raises(TransientError):
        conversations.ping()


# --- Qdrant -----------------------------------------------------------------------------


class QdrantStandIn(StandInServer):
    """Just enough of Qdrant's REST API for a ping: ``GET /collections``."""

    def handle(self, request: Request) -> Reply:
        """Answer the collection list, 404 elsewhere."""
        if request.method == "GET" and request.path == "/collections":
            return Reply(body={"result": {"collections": []}, "status": "ok", "time": 0.0})
        return Reply(status=404, body={"status": {"error": "Not found"}})


@pytest.fixture
def remote_qdrant() -> Iterator[tuple[QdrantStandIn, QdrantVectorIndex]]:
    with QdrantStandIn() as server:
        client = QdrantClient(url=server.url, timeout=1, check_compatibility=False)
        index = QdrantVectorIndex(client, "calls", 8)
        try:
            yield server, index
        finally:
            index.close()


def test_the_qdrant_ping_succeeds_in_memory() -> None:
    index = QdrantVectorIndex(QdrantClient(location=":memory:"), "calls", 8)
    try:
        index.ping()
    finally:
        index.close()


def test_the_qdrant_ping_lists_the_collections_of_a_server(
    remote_qdrant: tuple[QdrantStandIn, QdrantVectorIndex],
) -> None:
    server, index = remote_qdrant

    index.ping()

    assert [(r.method, r.path) for r in server.requests] == [("GET", "/collections")]


@pytest.mark.parametrize(("status", "error"), FAILURES)
def test_a_qdrant_ping_failure_maps_to_transient_or_permanent(
    remote_qdrant: tuple[QdrantStandIn, QdrantVectorIndex],
    status: int,
    error: type[Exception],
) -> None:
    server, index = remote_qdrant
    server.fail_next(status)

    with pytest.raises(error):
        index.ping()


def test_a_qdrant_ping_to_a_closed_port_is_transient() -> None:
    client = QdrantClient(
        url=f"http://127.0.0.1:{_closed_port()}", timeout=1, check_compatibility=False
    )
    index = QdrantVectorIndex(client, "calls", 8)
    try:
        with pytest.raises(TransientError):
            index.ping()
    finally:
        index.close()


# --- Adapters.probes --------------------------------------------------------------------


def _settings(tmp_path: Path, **sections: Any) -> Settings:
    # Explicitly unset vendor keys so the environment cannot configure a vendor.
    unset: dict[str, Any] = {
        "openai": {"api_key": None},
        "pinecone": {"api_key": None, "index_name": None, "index_host": None},
        "qdrant": {"url": None},
        "elevenlabs": {"api_key": None},
        "checkpoint": {"redis_url": None},
    }
    return load_settings(data_dir=tmp_path, **(unset | sections))


def _build_all(adapters: Adapters) -> None:
    # What the worker does: ask for every step's adapter.
    adapters.analyzer()
    adapters.embedder()
    adapters.vectors()
    adapters.transcripts()
    adapters.checkpoints()


def _named(probes: list[Probe]) -> list[tuple[str, str]]:
    return [(probe.name, probe.label) for probe in probes]


def test_a_local_configuration_probes_only_the_checkpoint_redis(
    tmp_path: Path, sqlite_engine: sa.Engine, redis_url: str
) -> None:
    adapters = Adapters(_settings(tmp_path), engine=sqlite_engine, redis_url=redis_url)
    try:
        _build_all(adapters)
        probes = adapters.probes()

        assert _named(probes) == [("checkpoints", "redis")]
        probes[0].ping()
    finally:
        adapters.close()


def test_configured_vendors_are_probed_under_their_labels_and_answer(
    tmp_path: Path,
    sqlite_engine: sa.Engine,
    redis_url: str,
    openai_standin: OpenAIStandIn,
    pinecone_standin: PineconeStandIn,
    elevenlabs_standin: ElevenLabsStandIn,
) -> None:
    configured = _settings(
        tmp_path,
        openai={
            "api_key": openai_standin.api_key,
            "base_url": openai_standin.base_url,
            "embedding_dimensions": PINECONE_STANDIN_DIMENSION,
            "max_retries": 0,
            "timeout_s": 1.0,
        },
        pinecone={
            "api_key": pinecone_standin.api_key,
            "index_name": "calls",
            "index_host": pinecone_standin.url,
            "timeout_s": 1.0,
        },
        elevenlabs={
            "api_key": elevenlabs_standin.api_key,
            "base_url": elevenlabs_standin.url,
            "timeout_s": 1.0,
        },
    )
    adapters = Adapters(configured, engine=sqlite_engine, redis_url=redis_url)
    try:
        _build_all(adapters)
        probes = adapters.probes()

        assert _named(probes) == [
            ("analyzer", "openai:gpt-4o-mini"),
            ("embedder", "openai:text-embedding-3-small"),
            ("vectors", "pinecone:calls"),
            ("transcripts", "elevenlabs"),
            ("checkpoints", "redis"),
        ]
        for probe in probes:
            probe.ping()
        assert [(r.method, r.path) for r in openai_standin.requests] == [
            ("GET", "/v1/models/gpt-4o-mini"),
            ("GET", "/v1/models/text-embedding-3-small"),
        ]
        assert len(elevenlabs_standin.requests) == 1
        assert pinecone_standin.requests
    finally:
        adapters.close()


def test_only_the_adapters_asked_for_are_probed(
    tmp_path: Path,
    sqlite_engine: sa.Engine,
    redis_url: str,
    openai_standin: OpenAIStandIn,
    pinecone_standin: PineconeStandIn,
) -> None:
    configured = _settings(
        tmp_path,
        openai={"api_key": openai_standin.api_key, "base_url": openai_standin.base_url},
        pinecone={
            "api_key": pinecone_standin.api_key,
            "index_name": "calls",
            "index_host": pinecone_standin.url,
            "timeout_s": 1.0,
        },
    )
    adapters = Adapters(configured, engine=sqlite_engine, redis_url=redis_url)
    try:
        adapters.vectors()
        probes = adapters.probes()

        assert _named(probes) == [("vectors", "pinecone:calls")]
        probes[0].ping()
        assert pinecone_standin.requests
        assert openai_standin.requests == []
    finally:
        adapters.close()


def test_a_probe_of_a_failing_vendor_raises(
    tmp_path: Path, sqlite_engine: sa.Engine, redis_url: str, elevenlabs_standin: ElevenLabsStandIn
) -> None:
    configured = _settings(
        tmp_path,
        elevenlabs={"api_key": "xi-wrong", "base_url": elevenlabs_standin.url, "timeout_s": 1.0},
    )
    adapters = Adapters(configured, engine=sqlite_engine, redis_url=redis_url)
    try:
        _build_all(adapters)
        probes = {probe.name: probe.ping for probe in adapters.probes()}

        assert set(probes) == {"transcripts", "checkpoints"}
        with pytest.raises(PermanentError, match="401"):
            probes["transcripts"]()
    finally:
        adapters.close()


def test_a_probe_of_an_unreachable_checkpoint_redis_is_transient(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    configured = _settings(tmp_path, broker={"socket_timeout_s": 0.5})
    adapters = Adapters(
        configured, engine=sqlite_engine, redis_url=f"redis://127.0.0.1:{_closed_port()}/0"
    )
    try:
        adapters.checkpoints()
        [probe] = adapters.probes()

        with pytest.raises(TransientError):
            probe.ping()
    finally:
        adapters.close()


def test_qdrant_is_probed_when_it_holds_the_vectors(
    tmp_path: Path, sqlite_engine: sa.Engine, redis_url: str
) -> None:
    configured = _settings(tmp_path, qdrant={"url": ":memory:"})
    adapters = Adapters(configured, engine=sqlite_engine, redis_url=redis_url)
    try:
        _build_all(adapters)
        probes = {probe.name: probe for probe in adapters.probes()}

        assert set(probes) == {"vectors", "checkpoints"}
        assert probes["vectors"].label == "qdrant:switchboard-calls"
        probes["vectors"].ping()
    finally:
        adapters.close()
