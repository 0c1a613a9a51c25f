"""Choose and build vendor adapters from the settings, only those a process asks for.

A process root creates an ``Adapters`` and asks it for what it uses: the worker for
every step's adapters, the API for the vector index alone (similar calls). Each adapter
is built once, on first request, and labelled (``local…`` for local adapters) for logs
and readiness.

Rules:

- analyzer / embedder: OpenAI when ``openai.api_key`` is set, else the local analyzer
  and the hashing embedder (``vectors.local_dimensions``);
- vectors by ``vectors.backend``; ``auto`` means Pinecone when its key and an index
  (name or host) are set, else Qdrant when ``qdrant.url`` is set, else the SQL store.
  The index uses the embedder's dimension, known from the settings alone;
- transcripts: ElevenLabs when ``elevenlabs.api_key`` is set, else the local archive in
  ``<data_dir>/conversations``;
- checkpoints: Redis at ``checkpoint.redis_url``, else the broker's;
- telephony: CallKaro when ``callkaro.api_key`` is set, else the call simulator, which
  plays status webhooks back to ``simulator.webhook_url`` signed with
  ``telephony_webhook_secret``.

A vendor that is configured is used or the build fails: a half-configured vendor
(a Pinecone key without an index, ``backend="qdrant"`` without a URL) raises
``ValueError`` instead of falling back to a local adapter. In production a local
adapter is refused unless ``SWITCHBOARD_ALLOW_LOCAL`` names it
(``infra.local_adapters``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import redis
import sqlalchemy as sa

from infra.local_adapters import check_local
from infra.settings import Settings
from infra.store.vectors import SqlVectorIndex
from infra.vendors.call_simulator import CallSimulator
from infra.vendors.callkaro import CallKaroTelephony
from infra.vendors.checkpoints import RedisCheckpointReader
from infra.vendors.elevenlabs import ElevenLabsConversations, LocalConversationArchive
from infra.vendors.local_analyzer import LocalAnalyzer
from infra.vendors.local_embedder import HashingEmbedder
from infra.vendors.telephony_signing import simulator_secret


@runtime_checkable
class _Pingable(Protocol):
    def ping(self) -> None: ...


if TYPE_CHECKING:
    # The vendors' SDKs are imported when an adapter of theirs is built, not with this
    # module: every CLI command imports it, and openai, pinecone and qdrant_client cost
    # a second and more to import (`switchboard --version` took 2.9 s).
    import openai

    from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder
    from infra.vendors.pinecone_index import PineconeVectorIndex
    from infra.vendors.qdrant_index import QdrantVectorIndex

    AnyAnalyzer = LocalAnalyzer | OpenAIAnalyzer
    AnyEmbedder = HashingEmbedder | OpenAIEmbedder
    AnyVectorIndex = SqlVectorIndex | PineconeVectorIndex | QdrantVectorIndex
AnyTranscriptSource = ElevenLabsConversations | LocalConversationArchive
AnyTelephony = CallKaroTelephony | CallSimulator


@dataclass(frozen=True)
class Probe:
    """A readiness probe of one adapter that talks to a service.

    Attributes:
        name: The adapter's role (``vectors``, ``analyzer``…).
        label: Which adapter it is (``pinecone:calls``…).
        ping: Returns when the service answers; raises ``TransientError`` or
            ``PermanentError`` when it does not.
    """

    name: str
    label: str
    ping: Callable[[], None]


class Adapters:
    """The adapters of one process, built on first use and closed together.

    Args:
        settings: The process settings.
        engine: The SQL store's engine (for the local vector index).
        redis_url: The broker's Redis URL (checkpoints live there unless configured).

    Every accessor raises ``ValueError`` when its vendor is configured incompletely,
    and ``LocalAdapterRefused`` when production would run a local adapter not allowed.
    """

    def __init__(self, settings: Settings, *, engine: sa.Engine, redis_url: str) -> None:
        self._settings = settings
        self._engine = engine
        self._redis_url = redis_url
        self.labels: dict[str, str] = {}
        self._closers: list[Callable[[], None]] = []
        self._openai: openai.OpenAI | None = None
        self._analyzer: AnyAnalyzer | None = None
        self._embedder: AnyEmbedder | None = None
        self._vectors: AnyVectorIndex | None = None
        self._transcripts: AnyTranscriptSource | None = None
        self._checkpoints: RedisCheckpointReader | None = None
        self._telephony: AnyTelephony | None = None

    @property
    def local(self) -> list[str]:
        """Roles served by a local adapter, sorted."""
        return sorted(name for name, label in self.labels.items() if label.startswith("local"))

    def analyzer(self) -> AnyAnalyzer:
        """The call analyzer."""
        if self._analyzer is None:
            self._analyzer, self.labels["analyzer"] = self._build_analyzer()
        return self._analyzer

    def embedder(self) -> AnyEmbedder:
        """The text embedder."""
        if self._embedder is None:
            self._embedder, self.labels["embedder"] = self._build_embedder()
        return self._embedder

    def vectors(self) -> AnyVectorIndex:
        """The vector index."""
        if self._vectors is None:
            self._vectors, self.labels["vectors"] = self._build_vectors()
        return self._vectors

    def transcripts(self) -> AnyTranscriptSource:
        """Where transcripts not sent inline are fetched."""
        if self._transcripts is None:
            self._transcripts, self.labels["transcripts"] = self._build_transcripts()
        return self._transcripts

    def checkpoints(self) -> RedisCheckpointReader:
        """The live-call service's checkpoints."""
        if self._checkpoints is None:
            self._checkpoints, self.labels["checkpoints"] = self._build_checkpoints()
        return self._checkpoints

    def telephony(self) -> AnyTelephony:
        """The telephony provider that places outbound calls."""
        if self._telephony is None:
            self._telephony, self.labels["telephony"] = self._build_telephony()
        return self._telephony

    def probes(self) -> list[Probe]:
        """A probe of every built adapter that talks to a service.

        Local adapters (in-process, or the SQL store the database check covers) have
        none.
        """
        built: dict[str, object] = {
            "analyzer": self._analyzer,
            "embedder": self._embedder,
            "vectors": self._vectors,
            "transcripts": self._transcripts,
            "checkpoints": self._checkpoints,
            "telephony": self._telephony,
        }
        return [
            Probe(name, self.labels[name], adapter.ping)
            for name, adapter in built.items()
            if isinstance(adapter, _Pingable)
        ]

    def close(self) -> None:
        """Close every client built (each once, newest first)."""
        while self._closers:
            self._closers.pop()()

    def _openai_client(self) -> openai.OpenAI:
        from infra.vendors.openai_llm import build_openai_client

        if self._openai is None:
            self._openai = build_openai_client(self._settings.openai)
            self._closers.append(self._openai.close)
        return self._openai

    def _build_analyzer(self) -> tuple[AnyAnalyzer, str]:
        if self._settings.openai.api_key is None:
            check_local(self._settings, "analyzer")
            return LocalAnalyzer(), "local"
        from infra.vendors.openai_llm import OpenAIAnalyzer

        analyzer = OpenAIAnalyzer(self._openai_client(), self._settings.openai.chat_model)
        return analyzer, analyzer.name

    def _build_embedder(self) -> tuple[AnyEmbedder, str]:
        if self._settings.openai.api_key is None:
            check_local(self._settings, "embedder")
            local = HashingEmbedder(self._settings.vectors.local_dimensions)
            return local, local.name
        from infra.vendors.openai_llm import OpenAIEmbedder

        openai_settings = self._settings.openai
        embedder = OpenAIEmbedder(
            self._openai_client(),
            openai_settings.embedding_model,
            openai_settings.embedding_dimensions,
        )
        return embedder, embedder.name

    def _build_vectors(self) -> tuple[AnyVectorIndex, str]:
        settings = self._settings
        backend = choose_vector_backend(settings)
        if backend == "pinecone":
            from infra.vendors.pinecone_index import PineconeVectorIndex

            pinecone = PineconeVectorIndex.from_settings(settings.pinecone)
            self._closers.append(pinecone.close)
            return pinecone, pinecone.label
        if backend == "qdrant":
            from qdrant_client import QdrantClient

            from infra.vendors.qdrant_index import QdrantVectorIndex

            url = settings.qdrant.url or ""
            key = settings.qdrant.api_key
            client = (
                QdrantClient(location=":memory:")
                if url == ":memory:"
                else QdrantClient(url=url, api_key=key.get_secret_value() if key else None)
            )
            qdrant = QdrantVectorIndex(
                client, settings.qdrant.collection, embedding_dimensions(settings)
            )
            self._closers.append(qdrant.close)
            return qdrant, qdrant.label
        check_local(settings, "vectors")
        return SqlVectorIndex(self._engine), "local-sql"

    def _build_transcripts(self) -> tuple[AnyTranscriptSource, str]:
        settings = self._settings
        if settings.elevenlabs.api_key is None:
            check_local(settings, "transcripts")
            return LocalConversationArchive(settings.data_dir / "conversations"), "local-archive"
        source = ElevenLabsConversations.from_settings(settings.elevenlabs)
        self._closers.append(source.close)
        return source, "elevenlabs"

    def _build_telephony(self) -> tuple[AnyTelephony, str]:
        settings = self._settings
        if settings.callkaro.api_key is None:
            check_local(settings, "telephony")
            simulator = CallSimulator(
                settings.simulator.webhook_url,
                _configured_or_simulator_secret(settings),
                step_s=settings.simulator.step_s,
                outcomes=settings.simulator.outcomes,
            )
            self._closers.append(simulator.close)
            return simulator, simulator.label
        callkaro = CallKaroTelephony(settings.callkaro)
        self._closers.append(callkaro.close)
        return callkaro, callkaro.label

    def _build_checkpoints(self) -> tuple[RedisCheckpointReader, str]:
        settings = self._settings
        client = redis.Redis.from_url(
            settings.checkpoint.redis_url or self._redis_url,
            socket_timeout=settings.broker.socket_timeout_s,
            socket_connect_timeout=settings.broker.socket_timeout_s,
        )
        self._closers.append(client.close)
        return RedisCheckpointReader(client, settings.checkpoint.key_prefix), "redis"


def telephony_webhook_secret(settings: Settings) -> str | None:
    """The secret the telephony status webhooks are signed with.

    The configured ``callkaro.webhook_secret``; else, while the simulator places the
    calls (no ``callkaro.api_key``), the simulator's own secret in the data directory;
    else None (the provider's webhooks cannot be verified).
    """
    if settings.callkaro.webhook_secret is None and settings.callkaro.api_key is not None:
        return None
    return _configured_or_simulator_secret(settings)


def _configured_or_simulator_secret(settings: Settings) -> str:
    configured = settings.callkaro.webhook_secret
    if configured is not None:
        return configured.get_secret_value()
    return simulator_secret(settings.data_dir)


def embedding_dimensions(settings: Settings) -> int:
    """The length of the configured embedder's vectors (without building it)."""
    if settings.openai.api_key is None:
        return settings.vectors.local_dimensions
    return settings.openai.embedding_dimensions


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
