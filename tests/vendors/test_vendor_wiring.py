"""build_adapters: which adapters the settings select, their labels, and close()."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contracts import HealthAnswer
from infra.settings import Settings
from infra.store.engine import create_engine
from infra.store.vectors import SqlVectorIndex
from infra.vendors.checkpoints import write_checkpoint
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from infra.vendors.local_analyzer import LocalAnalyzer
from infra.vendors.local_embedder import HashingEmbedder
from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder
from infra.vendors.pinecone_index import PineconeVectorIndex
from infra.vendors.qdrant_index import QdrantVectorIndex
from infra.vendors.wiring import build_adapters, choose_vector_backend

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    created = create_engine(f"sqlite:///{tmp_path / 'wiring.db'}")
    try:
        yield created
    finally:
        created.dispose()


def settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, **sections})


def test_nothing_configured_selects_the_labelled_local_adapters(
    tmp_path: Path, engine: sa.Engine
) -> None:
    adapters = build_adapters(settings(tmp_path), engine=engine, redis_url=UNREACHABLE_REDIS)
    try:
        assert isinstance(adapters.analyzer, LocalAnalyzer)
        assert isinstance(adapters.embedder, HashingEmbedder)
        assert adapters.embedder.dimensions == 256
        assert isinstance(adapters.vectors, SqlVectorIndex)
        assert isinstance(adapters.transcripts, LocalConversationArchive)
        assert adapters.transcripts.directory == tmp_path / "conversations"
        assert adapters.labels == {
            "analyzer": "local",
            "embedder": "local-hashing-256",
            "vectors": "local-sql",
            "transcripts": "local-archive",
            "checkpoints": "redis",
        }
    finally:
        adapters.close()


def test_configured_vendors_are_selected_and_labelled(tmp_path: Path, engine: sa.Engine) -> None:
    configured = settings(
        tmp_path,
        openai={"api_key": "sk-x", "base_url": "http://127.0.0.1:9/v1", "embedding_dimensions": 64},
        pinecone={"api_key": "pc-x", "index_name": "calls", "index_host": "http://127.0.0.1:9"},
        elevenlabs={"api_key": "xi-x"},
    )

    adapters = build_adapters(configured, engine=engine, redis_url=UNREACHABLE_REDIS)
    try:
        assert isinstance(adapters.analyzer, OpenAIAnalyzer)
        assert isinstance(adapters.embedder, OpenAIEmbedder)
        assert isinstance(adapters.vectors, PineconeVectorIndex)
        assert isinstance(adapters.transcripts, ElevenLabsConversations)
        assert adapters.labels == {
            "analyzer": "openai:gpt-4o-mini",
            "embedder": "openai:text-embedding-3-small",
            "vectors": "pinecone:calls",
            "transcripts": "elevenlabs",
            "checkpoints": "redis",
        }
    finally:
        adapters.close()


def test_qdrant_is_chosen_without_pinecone_and_uses_the_embedders_dimension(
    tmp_path: Path, engine: sa.Engine
) -> None:
    configured = settings(tmp_path, qdrant={"url": ":memory:"}, vectors={"local_dimensions": 32})

    adapters = build_adapters(configured, engine=engine, redis_url=UNREACHABLE_REDIS)
    try:
        assert isinstance(adapters.vectors, QdrantVectorIndex)
        assert adapters.vectors.dimensions == adapters.embedder.dimensions == 32
        assert adapters.labels["vectors"] == "qdrant:switchboard-calls"
    finally:
        adapters.close()


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
    tmp_path: Path, sections: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"(?i)pinecone|qdrant"):
        choose_vector_backend(settings(tmp_path, **sections))


def test_checkpoints_read_from_the_configured_redis(
    tmp_path: Path, engine: sa.Engine, redis_url: str
) -> None:
    configured = settings(tmp_path, checkpoint={"redis_url": redis_url, "key_prefix": "cp:"})
    answers = [HealthAnswer(question="mood", answer="good")]

    adapters = build_adapters(configured, engine=engine, redis_url=UNREACHABLE_REDIS)
    try:
        with redis.Redis.from_url(redis_url) as client:
            write_checkpoint(client, key_prefix="cp:", thread_id="t1", answers=answers)
        assert adapters.checkpoints.read_answers("t1") == answers
    finally:
        adapters.close()


def test_close_closes_every_client_once(tmp_path: Path, engine: sa.Engine) -> None:
    configured = settings(tmp_path, elevenlabs={"api_key": "xi-x"})
    adapters = build_adapters(configured, engine=engine, redis_url=UNREACHABLE_REDIS)
    transcripts = adapters.transcripts
    assert isinstance(transcripts, ElevenLabsConversations)

    adapters.close()
    adapters.close()

    assert adapters.closers == []
    with pytest.raises(RuntimeError):
        transcripts.fetch("conv_1")
