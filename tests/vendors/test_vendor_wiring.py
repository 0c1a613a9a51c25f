"""Adapters: which adapters the settings select, built lazily, their labels, and close()."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contracts import HealthAnswer
from infra.settings import Settings
from infra.store.vectors import SqlVectorIndex
from infra.vendors.checkpoints import write_checkpoint
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from infra.vendors.local_analyzer import LocalAnalyzer
from infra.vendors.local_embedder import HashingEmbedder
from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder
from infra.vendors.pinecone_index import PineconeVectorIndex
from infra.vendors.qdrant_index import QdrantVectorIndex
from infra.vendors.wiring import Adapters, choose_vector_backend, embedding_dimensions

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

MakeAdapters = Callable[..., Adapters]
"""Builds an ``Adapters`` on the test's sqlite_engine, closed after the test."""

EVERY_VENDOR: dict[str, Any] = {
    "openai": {"api_key": "sk-x", "base_url": "http://127.0.0.1:9/v1", "embedding_dimensions": 64},
    "pinecone": {"api_key": "pc-x", "index_name": "calls", "index_host": "http://127.0.0.1:9"},
    "elevenlabs": {"api_key": "xi-x"},
}


def settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, **sections})


@pytest.fixture
def make_adapters(sqlite_engine: sa.Engine) -> Iterator[MakeAdapters]:
    built: list[Adapters] = []

    def make(configured: Settings, redis_url: str = UNREACHABLE_REDIS) -> Adapters:
        adapters = Adapters(configured, engine=sqlite_engine, redis_url=redis_url)
        built.append(adapters)
        return adapters

    yield make
    for adapters in built:
        adapters.close()


def test_nothing_configured_selects_the_labelled_local_adapters(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(settings(tmp_path))

    analyzer = adapters.analyzer()
    embedder = adapters.embedder()
    vectors = adapters.vectors()
    transcripts = adapters.transcripts()
    adapters.checkpoints()

    assert isinstance(analyzer, LocalAnalyzer)
    assert isinstance(embedder, HashingEmbedder)
    assert embedder.dimensions == 256
    assert isinstance(vectors, SqlVectorIndex)
    assert isinstance(transcripts, LocalConversationArchive)
    assert transcripts.directory == tmp_path / "conversations"
    assert adapters.labels == {
        "analyzer": "local",
        "embedder": "local-hashing-256",
        "vectors": "local-sql",
        "transcripts": "local-archive",
        "checkpoints": "redis",
    }
    assert adapters.local == ["analyzer", "embedder", "transcripts", "vectors"]
    assert [a.vendor for a in (analyzer, embedder, vectors, transcripts)] == [None] * 4


def test_configured_vendors_are_selected_and_labelled(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(settings(tmp_path, **EVERY_VENDOR))

    analyzer = adapters.analyzer()
    embedder = adapters.embedder()
    vectors = adapters.vectors()
    transcripts = adapters.transcripts()
    adapters.checkpoints()

    assert isinstance(analyzer, OpenAIAnalyzer)
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.dimensions == 64
    assert isinstance(vectors, PineconeVectorIndex)
    assert isinstance(transcripts, ElevenLabsConversations)
    assert adapters.labels == {
        "analyzer": "openai:gpt-4o-mini",
        "embedder": "openai:text-embedding-3-small",
        "vectors": "pinecone:calls",
        "transcripts": "elevenlabs",
        "checkpoints": "redis",
    }
    assert adapters.local == []
    assert [a.vendor for a in (analyzer, embedder, vectors, transcripts)] == [
        "openai",
        "openai",
        "pinecone",
        "elevenlabs",
    ]


def test_nothing_is_built_before_it_is_asked_for(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(settings(tmp_path, **EVERY_VENDOR))

    assert adapters.labels == {}
    assert adapters.probes() == []
    assert adapters.local == []


def test_each_adapter_is_built_once_and_shared(tmp_path: Path, make_adapters: MakeAdapters) -> None:
    adapters = make_adapters(settings(tmp_path, **EVERY_VENDOR))

    assert adapters.analyzer() is adapters.analyzer()
    assert adapters.embedder() is adapters.embedder()
    assert adapters.vectors() is adapters.vectors()
    assert adapters.transcripts() is adapters.transcripts()
    assert adapters.checkpoints() is adapters.checkpoints()


def test_the_api_asking_only_for_vectors_builds_no_openai_and_no_checkpoint_client(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(settings(tmp_path, **EVERY_VENDOR))

    vectors = adapters.vectors()

    assert isinstance(vectors, PineconeVectorIndex)
    assert adapters.labels == {"vectors": "pinecone:calls"}
    assert [(probe.name, probe.label) for probe in adapters.probes()] == [
        ("vectors", "pinecone:calls")
    ]


def test_qdrant_is_chosen_without_pinecone_and_uses_the_embedders_dimension(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    configured = settings(tmp_path, qdrant={"url": ":memory:"}, vectors={"local_dimensions": 32})
    adapters = make_adapters(configured)

    vectors = adapters.vectors()

    assert isinstance(vectors, QdrantVectorIndex)
    assert vectors.vendor == "qdrant"
    assert vectors.dimensions == adapters.embedder().dimensions == 32
    assert adapters.labels["vectors"] == "qdrant:switchboard-calls"


def test_qdrant_takes_the_openai_embedding_dimension_when_openai_embeds(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    configured = settings(
        tmp_path,
        qdrant={"url": ":memory:"},
        openai={"api_key": "sk-x", "embedding_dimensions": 48},
        vectors={"local_dimensions": 32},
    )
    adapters = make_adapters(configured)

    vectors = adapters.vectors()

    assert isinstance(vectors, QdrantVectorIndex)
    assert vectors.dimensions == 48
    assert "embedder" not in adapters.labels


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({}, 256),
        ({"vectors": {"local_dimensions": 32}}, 32),
        ({"openai": {"api_key": "sk-x"}}, 1536),
        ({"openai": {"api_key": "sk-x", "embedding_dimensions": 64}}, 64),
        ({"openai": {"embedding_dimensions": 64}, "vectors": {"local_dimensions": 16}}, 16),
    ],
)
def test_embedding_dimensions_follow_the_embedder_the_settings_select(
    tmp_path: Path, sections: dict[str, Any], expected: int, make_adapters: MakeAdapters
) -> None:
    configured = settings(tmp_path, **sections)

    assert embedding_dimensions(configured) == expected
    assert make_adapters(configured).embedder().dimensions == expected


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({}, "local"),
        ({"qdrant": {"url": ":memory:"}}, "qdrant"),
        ({"pinecone": {"api_key": "pc-x", "index_name": "calls"}}, "pinecone"),
        ({"pinecone": {"api_key": "pc-x", "index_host": "h"}, "qdrant": {"url": "u"}}, "pinecone"),
        ({"vectors": {"backend": "local"}, "qdrant": {"url": ":memory:"}}, "local"),
    ],
)
def test_the_vector_backend_follows_the_settings(
    tmp_path: Path, sections: dict[str, Any], expected: str
) -> None:
    assert choose_vector_backend(settings(tmp_path, **sections)) == expected


@pytest.mark.parametrize(
    "sections",
    [
        {"pinecone": {"api_key": "pc-x"}},
        {"pinecone": {"index_name": "calls"}},
        {"vectors": {"backend": "pinecone"}},
        {"vectors": {"backend": "qdrant"}},
    ],
)
def test_a_half_configured_vendor_fails_instead_of_falling_back(
    tmp_path: Path, sections: dict[str, Any], make_adapters: MakeAdapters
) -> None:
    configured = settings(tmp_path, **sections)
    adapters = make_adapters(configured)

    with pytest.raises(ValueError, match=r"(?i)pinecone|qdrant"):
        choose_vector_backend(configured)
    with pytest.raises(ValueError, match=r"(?i)pinecone|qdrant"):
        adapters.vectors()
    assert adapters.labels == {}


def test_checkpoints_read_from_the_configured_redis(
    tmp_path: Path, redis_url: str, make_adapters: MakeAdapters
) -> None:
    configured = settings(tmp_path, checkpoint={"redis_url": redis_url, "key_prefix": "cp:"})
    answers = [HealthAnswer(question="mood", answer="good")]
    adapters = make_adapters(configured, UNREACHABLE_REDIS)

    with redis.Redis.from_url(redis_url) as client:
        write_checkpoint(client, key_prefix="cp:", thread_id="t1", answers=answers)

    assert adapters.checkpoints().read_answers("t1") == answers


def test_checkpoints_default_to_the_brokers_redis(
    tmp_path: Path, redis_url: str, make_adapters: MakeAdapters
) -> None:
    answers = [HealthAnswer(question="mood", answer="fine")]
    adapters = make_adapters(settings(tmp_path), redis_url)

    with redis.Redis.from_url(redis_url) as client:
        write_checkpoint(client, key_prefix="checkpoint:", thread_id="t2", answers=answers)

    assert adapters.checkpoints().read_answers("t2") == answers


def test_close_closes_every_client_and_is_safe_to_repeat(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    adapters = Adapters(
        settings(tmp_path, elevenlabs={"api_key": "xi-x"}),
        engine=sqlite_engine,
        redis_url=UNREACHABLE_REDIS,
    )
    transcripts = adapters.transcripts()
    assert isinstance(transcripts, ElevenLabsConversations)

    adapters.close()
    adapters.close()

    with pytest.raises(RuntimeError, match="closed"):
        transcripts.fetch("conv_1")
