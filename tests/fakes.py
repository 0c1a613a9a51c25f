"""Hand-written in-memory fakes of every port in ``actors.ports``.

They behave like the real adapters where it matters (upserts by key, idempotent
callbacks, namespaces, cosine similarity, contract errors) and record what was asked
of them, so tests assert on outcomes rather than on mock calls.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts import CallAnalysis, HealthAnswer, TranscriptTurn
from contracts.errors import PermanentError
from contracts.values import CallLogEntry, ConversationSnapshot, VectorMatch, VectorRecord


@dataclass(frozen=True)
class ScheduledCallback:
    """A callback row as the fake callback book keeps it."""

    tenant_id: str
    conversation_id: str
    due_at: datetime
    reason: str
    status: str = "scheduled"


@dataclass
class InMemoryCallStore:
    """Call logs, callbacks and health answers in dicts (CallRecords, CallbackBook, HealthRecords).

    Attributes:
        call_logs: Call logs by conversation id.
        callbacks: Callbacks by conversation id (at most one each).
        health_answers: Per conversation id, the answers by question.
        health_tenants: The tenant of each conversation with answers.
    """

    call_logs: dict[str, CallLogEntry] = field(default_factory=dict)
    callbacks: dict[str, ScheduledCallback] = field(default_factory=dict)
    health_answers: dict[str, dict[str, HealthAnswer]] = field(default_factory=dict)
    health_tenants: dict[str, str] = field(default_factory=dict)

    def get_call_log(self, conversation_id: str) -> CallLogEntry | None:
        """Return the call log, or None."""
        return self.call_logs.get(conversation_id)

    def save_call_log(self, entry: CallLogEntry) -> None:
        """Insert or replace the call log of ``entry.conversation_id``."""
        self.call_logs[entry.conversation_id] = entry

    def schedule_callback(
        self, *, tenant_id: str, conversation_id: str, due_at: datetime, reason: str
    ) -> bool:
        """Record a scheduled callback; False (and no change) when one exists."""
        if conversation_id in self.callbacks:
            return False
        self.callbacks[conversation_id] = ScheduledCallback(
            tenant_id=tenant_id, conversation_id=conversation_id, due_at=due_at, reason=reason
        )
        return True

    def has_health_answers(self, conversation_id: str) -> bool:
        """Whether at least one answer is stored for the conversation."""
        return bool(self.health_answers.get(conversation_id))

    def save_health_answers(
        self, *, tenant_id: str, conversation_id: str, answers: Sequence[HealthAnswer]
    ) -> None:
        """Upsert the answers, keyed by conversation and question."""
        stored = self.health_answers.setdefault(conversation_id, {})
        for answer in answers:
            stored[answer.question] = answer
        self.health_tenants[conversation_id] = tenant_id


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors; 0.0 when either has no length."""
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0.0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm


@dataclass
class InMemoryVectorIndex:
    """A namespaced vector index with exact cosine search (VectorIndex).

    Attributes:
        namespaces: Records by id, per namespace.
        upserts: How many times ``upsert`` was called.
    """

    namespaces: dict[str, dict[str, VectorRecord]] = field(default_factory=dict)
    upserts: int = 0

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id."""
        self.upserts += 1
        stored = self.namespaces.setdefault(namespace, {})
        for record in records:
            stored[record.id] = record

    def fetch(self, namespace: str, ids: Sequence[str]) -> list[VectorRecord]:
        """Return the existing records among ``ids``."""
        stored = self.namespaces.get(namespace, {})
        return [stored[i] for i in ids if i in stored]

    def query(
        self,
        namespace: str,
        vector: Sequence[float],
        *,
        top_k: int,
        kind: str | None = None,
    ) -> list[VectorMatch]:
        """Return up to ``top_k`` records by descending cosine similarity."""
        candidates = [
            record
            for record in self.namespaces.get(namespace, {}).values()
            if kind is None or record.metadata.get("kind") == kind
        ]
        matches = [
            VectorMatch(id=r.id, score=cosine(vector, r.values), metadata=dict(r.metadata))
            for r in candidates
        ]
        matches.sort(key=lambda m: (-m.score, m.id))
        return matches[:top_k]


@dataclass
class FixedAnalyzer:
    """Returns the same analysis for every transcript and records each call (Analyzer).

    Attributes:
        analysis: What ``analyze`` returns.
        label: The analyzer's name.
        calls: ``(transcript, reference_time, timezone)`` of every call, in order.
    """

    analysis: CallAnalysis
    label: str = "fixed"
    calls: list[tuple[list[TranscriptTurn], datetime, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The analyzer's label."""
        return self.label

    @property
    def call_count(self) -> int:
        """How many times ``analyze`` ran."""
        return len(self.calls)

    def analyze(
        self, transcript: Sequence[TranscriptTurn], *, reference_time: datetime, timezone: str
    ) -> CallAnalysis:
        """Record the call and return the fixed analysis."""
        self.calls.append((list(transcript), reference_time, timezone))
        return self.analysis


@dataclass
class FakeTranscriptSource:
    """Plays scripted snapshots per conversation (TranscriptSource).

    Each fetch returns the conversation's next snapshot; the last one repeats, so
    ``script("c1", processing, done)`` answers "processing" once, then "done" forever.
    An unscripted conversation raises ``PermanentError``, as the real platform's 404.

    Attributes:
        snapshots: The remaining snapshots per conversation id.
        fetches: Conversation ids in the order they were fetched.
    """

    snapshots: dict[str, list[ConversationSnapshot]] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)

    def script(self, conversation_id: str, *snapshots: ConversationSnapshot) -> None:
        """Set the snapshots the conversation's fetches return, in order."""
        if not snapshots:
            raise ValueError("script at least one snapshot")
        self.snapshots[conversation_id] = list(snapshots)

    def fetch(self, conversation_id: str) -> ConversationSnapshot:
        """Return the conversation's next scripted snapshot."""
        self.fetches.append(conversation_id)
        queue = self.snapshots.get(conversation_id)
        if not queue:
            raise PermanentError(f"conversation {conversation_id} not found")
        return queue.pop(0) if len(queue) > 1 else queue[0]


@dataclass
class InMemoryCheckpoints:
    """Checkpoint threads holding health answers (CheckpointReader).

    Attributes:
        threads: The answers per thread id.
        deleted: Thread ids in the order ``delete`` was called.
    """

    threads: dict[str, list[HealthAnswer]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def put(self, thread_id: str, answers: Sequence[HealthAnswer]) -> None:
        """Write a thread's checkpoint, as the live-call service does."""
        self.threads[thread_id] = list(answers)

    def read_answers(self, thread_id: str) -> list[HealthAnswer] | None:
        """Return the thread's answers, or None when it is gone."""
        answers = self.threads.get(thread_id)
        return None if answers is None else list(answers)

    def delete(self, thread_id: str) -> None:
        """Delete the thread; nothing happens when it is already gone."""
        self.deleted.append(thread_id)
        self.threads.pop(thread_id, None)


_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class FakeEmbedder:
    """Deterministic bag-of-words hashing vectors: texts sharing words score closer (Embedder).

    Attributes:
        size: The vector dimension.
        batches: The texts of every ``embed`` call, in order.
    """

    size: int = 16
    batches: list[list[str]] = field(default_factory=list)

    @property
    def dimensions(self) -> int:
        """Length of every vector returned."""
        return self.size

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed each text by hashing its lower-cased words into signed buckets."""
        self.batches.append(list(texts))
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in _WORD.findall(text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            sign = 1.0 if digest[4] % 2 == 0 else -1.0
            vector[int.from_bytes(digest[:4], "big") % self.size] += sign
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector] if norm else vector


class FixedClock:
    """A clock for the ``now`` argument of steps: returns a set aware time until moved."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = at

    def __call__(self) -> datetime:
        """Return the current fixed time."""
        return self.at

    def advance(self, by: timedelta) -> None:
        """Move the clock forward."""
        self.at += by
