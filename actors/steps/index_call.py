"""Step ``index_call``: embed a call and upsert it into the tenant's vector namespace.

Consumes ``CallAnalyzed``; emits one ``CallIndexed``.

The texts are the analysis summary plus the transcript in chunks of about
``CHUNK_CHARS`` characters, one ``role: message`` line per turn; a turn is never split
across chunks unless it alone is longer than a chunk. All texts are embedded in one
call and upserted in one call, into ``tenant_namespace(tenant_id)``.

Idempotent: vector ids are deterministic (``summary_vector_id`` and
``transcript_vector_id``), so a replay replaces the same records; when every record is
already in the index the step skips the embedding call, so a replay does not pay for
embeddings again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from actors.ports import Embedder, VectorIndex
from contracts import CallAnalyzed, CallIndexed, Contract, TranscriptTurn
from contracts.errors import PermanentError
from contracts.values import (
    VectorRecord,
    summary_vector_id,
    tenant_namespace,
    transcript_vector_id,
)

CHUNK_CHARS = 1000
"""Target size of a transcript chunk, and the longest text kept in metadata."""


@dataclass(frozen=True)
class _Text:
    id: str
    kind: Literal["summary", "transcript"]
    chunk: int | None
    text: str


def run(event: CallAnalyzed, *, embedder: Embedder, index: VectorIndex) -> list[Contract]:
    """Embed the summary and transcript chunks and upsert them under deterministic ids.

    Args:
        event: The analyzed call.
        embedder: Turns texts into vectors.
        index: The vector store.

    Returns:
        ``[CallIndexed]`` carrying the ids of the call's vectors.

    Raises:
        PermanentError: The embedder returned a different number of vectors than texts.
        TransientError: The embedder or the index could not be reached.
    """
    texts = _texts(event)
    ids = [text.id for text in texts]
    namespace = tenant_namespace(event.tenant_id)
    if not _all_indexed(index, namespace, ids):
        vectors = embedder.embed([text.text for text in texts])
        if len(vectors) != len(texts):
            raise PermanentError(
                f"embedder returned {len(vectors)} vectors for {len(texts)} texts "
                f"(conversation {event.conversation_id})"
            )
        index.upsert(
            namespace,
            [
                VectorRecord(id=text.id, values=vector, metadata=_metadata(event, text))
                for text, vector in zip(texts, vectors, strict=True)
            ],
        )
    return [
        CallIndexed(
            job_id=event.job_id,
            correlation_id=event.correlation_id,
            tenant_id=event.tenant_id,
            conversation_id=event.conversation_id,
            agent_id=event.agent_id,
            caller_number=event.caller_number,
            analysis=event.analysis,
            vector_ids=ids,
            started_at=event.started_at,
            duration_secs=event.duration_secs,
            call_status=event.call_status,
        )
    ]


def _transcript_chunks(transcript: Sequence[TranscriptTurn]) -> list[str]:
    """Group a transcript's ``role: message`` lines into chunks of about ``CHUNK_CHARS``.

    Turns with a blank message are left out. A turn longer than a chunk is split at
    whitespace (or hard, when there is none in the second half of the window) into
    pieces of at most ``CHUNK_CHARS``, which are then packed like turns.

    Args:
        transcript: The call's turns, in order.

    Returns:
        The chunks, in transcript order; empty when no turn has words.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for turn in transcript:
        if not turn.message.strip():
            continue
        for piece in _pieces(f"{turn.role}: {turn.message.strip()}"):
            added = len(piece) + (1 if current else 0)  # the joining newline
            if current and size + added > CHUNK_CHARS:
                chunks.append("\n".join(current))
                current, size, added = [], 0, len(piece)
            current.append(piece)
            size += added
    if current:
        chunks.append("\n".join(current))
    return chunks


def _pieces(line: str) -> list[str]:
    pieces: list[str] = []
    while len(line) > CHUNK_CHARS:
        cut = line.rfind(" ", 0, CHUNK_CHARS + 1)
        # Whitespace early in the window (e.g. after the "user:" prefix) would leave a
        # uselessly small piece: cut hard instead.
        if cut <= CHUNK_CHARS // 2:
            cut = CHUNK_CHARS
        pieces.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    if line:
        pieces.append(line)
    return pieces


def _texts(event: CallAnalyzed) -> list[_Text]:
    conversation = event.conversation_id
    texts: list[_Text] = []
    summary = event.analysis.summary.strip()
    # Embedding APIs reject empty input; a call without a summary is still findable by
    # its transcript.
    if summary:
        texts.append(_Text(summary_vector_id(conversation), "summary", None, summary))
    texts.extend(
        _Text(transcript_vector_id(conversation, i), "transcript", i, chunk)
        for i, chunk in enumerate(_transcript_chunks(event.transcript))
    )
    return texts


def _all_indexed(index: VectorIndex, namespace: str, ids: Sequence[str]) -> bool:
    if not ids:
        return True
    found = {record.id for record in index.fetch(namespace, ids)}
    return found.issuperset(ids)


def _metadata(event: CallAnalyzed, text: _Text) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "conversation_id": event.conversation_id,
        "tenant_id": event.tenant_id,
        "agent_id": event.agent_id,
        "kind": text.kind,
        "topics": list(event.analysis.topics),
        "sentiment": event.analysis.sentiment,
        "text": text.text[:CHUNK_CHARS],
    }
    if text.chunk is not None:
        metadata["chunk"] = text.chunk
    return metadata
