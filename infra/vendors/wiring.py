"""Choose and build the vendor adapters from the settings (called at a process's root).

Rules:

- analyzer / embedder: OpenAI when ``openai.api_key`` is set, else the local analyzer
  and the hashing embedder (``vectors.local_dimensions``);
- vectors by ``vectors.backend``; ``auto`` means Pinecone when its key and an index
  (name or host) are set, else Qdrant when ``qdrant.url`` is set, else the SQL store.
  The index always uses the embedder's dimension;
- transcripts: ElevenLabs when ``elevenlabs.api_key`` is set, else the local archive in
  ``<data_dir>/conversations``;
- checkpoints: Redis at ``checkpoint.redis_url``, else the broker's.

A vendor that is configured is used or the build fails: a half-configured vendor
(a Pinecone key without an index, ``backend="qdrant"`` without a URL) raises
``ValueError`` instead of falling back to a local adapter. Labels name what was chosen
(``local…`` for local adapters) for logs and ``/readyz``, which also runs ``probes()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import openai
import redis
import sqlalchemy as sa
from qdrant_client import QdrantClient

from infra.settings import Settings
from infra.store.vectors import SqlVectorIndex
from infra.vendors.checkpoints import RedisCheckpointReader
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from infra.vendors.local_analyzer import LocalAnalyzer
from infra.vendors.local_embedder import HashingEmbedder
from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder, build_openai_client
from infra.vendors.pinecone_index import PineconeVectorIndex
from infra.vendors.qdrant_index import QdrantVectorIndex


@runtime_checkable
class _Pingable(Protocol):
    def ping(self) -> None: ...


AnyAnalyzer = LocalAnalyzer | OpenAIAnalyzer
AnyEmbedder = HashingEmbedder | OpenAIEmbedder
AnyVectorIndex = SqlVectorIndex | PineconeVectorIndex | QdrantVectorIndex
AnyTranscriptSource = ElevenLabsConversations | LocalConversationArchive


@dataclass
class VendorAdapters:
    """The adapters a process uses, with what each is, and the clients to close."""

    analyzer: AnyAnalyzer
    embedder: AnyEmbedder
    vectors: AnyVectorIndex
    transcripts: AnyTranscriptSource
    checkpoints: RedisCheckpointReader
    labels: dict[str, str]
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def probes(self) -> list[tuple[str, str, Callable[[], None]]]:
        """``(name, label, ping)`` of every adapter that talks to a service, for readiness.

        Local adapters (in-process, or the SQL store the database check covers) have no
        probe; checkpoints always do (Redis). Each ``ping`` raises ``TransientError`` or
        ``PermanentError`` when its service does not answer.
        """
        adapters: dict[str, object] = {
            "analyzer": self.analyzer,
            "embedder": self.embedder,
            "vectors": self.vectors,
            "transcripts": self.transcripts,
            "checkpoints": self.checkpoints,
        }
        return [
            (name, self.labels[name], adapter.ping)
            for name, adapter in adapters.items()
            if isinstance(adapter, _Pingable)
        ]

    def close(self) -> None:
        """Close every client ``build_adapters`` created (each once, newest first)."""
        while self.closers:
            self.closers.pop()()


def build_adapters(settings: Settings, *, engine: sa.Engine, redis_url: str) -> VendorAdapters:
    """Build the adapters the settings ask for.

    Args:
        settings: The process settings.
        engine: The SQL store's engine (for the local vector index).
        redis_url: The broker's Redis URL (checkpoints live there unless configured).

    Raises:
        ValueError: A vendor is configured incompletely.
    """
    closers: list[Callable[[], None]] = []
    try:
        return _build(settings, engine=engine, redis_url=redis_url, closers=closers)
    except BaseException:
        # Do not leak the clients built before the failure; the error still propagates.
        while closers:
            closers.pop()()
        raise


def _build(
    settings: Settings, *, engine: sa.Engine, redis_url: str, closers: list[Callable[[], None]]
) -> VendorAdapters:
    labels: dict[str, str] = {}
    analyzer, embedder = _language(settings, labels, closers)
    vectors = _vectors(settings, engine, embedder.dimensions, labels, closers)
    transcripts = _transcripts(settings, labels, closers)
    client = redis.Redis.from_url(
        settings.checkpoint.redis_url or redis_url,
        socket_timeout=settings.broker.socket_timeout_s,
        socket_connect_timeout=settings.broker.socket_timeout_s,
    )
    closers.append(client.close)
    labels["checkpoints"] = "redis"
    return VendorAdapters(
        analyzer=analyzer,
        embedder=embedder,
        vectors=vectors,
        transcripts=transcripts,
        checkpoints=RedisCheckpointReader(client, settings.checkpoint.key_prefix),
        labels=labels,
        closers=closers,
    )


def _language(
    settings: Settings, labels: dict[str, str], closers: list[Callable[[], None]]
) -> tuple[AnyAnalyzer, AnyEmbedder]:
    if settings.openai.api_key is None:
        local = HashingEmbedder(settings.vectors.local_dimensions)
        labels["analyzer"], labels["embedder"] = "local", local.name
        return LocalAnalyzer(), local
    client: openai.OpenAI = build_openai_client(settings.openai)
    closers.append(client.close)
    analyzer = OpenAIAnalyzer(client, settings.openai.chat_model)
    embedder = OpenAIEmbedder(
        client, settings.openai.embedding_model, settings.openai.embedding_dimensions
    )
    labels["analyzer"], labels["embedder"] = analyzer.name, embedder.name
    return analyzer, embedder


def choose_vector_backend(settings: Settings) -> str:
    """``pinecone``, ``qdrant`` or ``local``, following ``vectors.backend``.

    Raises:
        ValueError: The chosen (or partly configured) vendor lacks a required setting.
    """
    pinecone = settings.pinecone
    pinecone_ready = pinecone.api_key is not None and bool(
        pinecone.index_name or pinecone.index_host
    )
    pinecone_touched = pinecone.api_key is not None or bool(
        pinecone.index_name or pinecone.index_host
    )
    backend = settings.vectors.backend
    if backend == "auto":
        if pinecone_touched and not pinecone_ready:
            raise ValueError("Pinecone is partly configured: set api_key and index_name or host")
        backend = "pinecone" if pinecone_ready else "qdrant" if settings.qdrant.url else "local"
    if backend == "pinecone" and not pinecone_ready:
        raise ValueError("vectors.backend=pinecone needs pinecone.api_key and an index")
    if backend == "qdrant" and not settings.qdrant.url:
        raise ValueError("vectors.backend=qdrant needs qdrant.url")
    return backend


def _vectors(
    settings: Settings,
    engine: sa.Engine,
    dimensions: int,
    labels: dict[str, str],
    closers: list[Callable[[], None]],
) -> AnyVectorIndex:
    backend = choose_vector_backend(settings)
    if backend == "pinecone":
        pinecone = PineconeVectorIndex.from_settings(settings.pinecone)
        closers.append(pinecone.close)
        labels["vectors"] = pinecone.label
        return pinecone
    if backend == "qdrant":
        url = settings.qdrant.url or ""
        api_key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
        client = (
            QdrantClient(location=":memory:")
            if url == ":memory:"
            else QdrantClient(url=url, api_key=api_key)
        )
        qdrant = QdrantVectorIndex(client, settings.qdrant.collection, dimensions)
        closers.append(qdrant.close)
        labels["vectors"] = qdrant.label
        return qdrant
    labels["vectors"] = "local-sql"
    return SqlVectorIndex(engine)


def _transcripts(
    settings: Settings, labels: dict[str, str], closers: list[Callable[[], None]]
) -> AnyTranscriptSource:
    if settings.elevenlabs.api_key is None:
        labels["transcripts"] = "local-archive"
        return LocalConversationArchive(settings.data_dir / "conversations")
    source = ElevenLabsConversations.from_settings(settings.elevenlabs)
    closers.append(source.close)
    labels["transcripts"] = "elevenlabs"
    return source
