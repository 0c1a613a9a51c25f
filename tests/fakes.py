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

from contracts import CallAnalysis, HealthAnswer, PlaceCall, TranscriptTurn
from contracts.errors import PermanentError, SwitchboardError
from contracts.values import (
    CallLogEntry,
    ConversationSnapshot,
    OutboundCall,
    VectorMatch,
    VectorRecord,
)
from infra.store.records import MessageRef


@dataclass(frozen=True)
class ScheduledCallback:
    """A callback row as the fake callback book keeps it."""

    tenant_id: str
    conversation_id: str
    due_at: datetime
    reason: str
    phone: str | None = None
    agent_id: str | None = None
    status: str = "scheduled"


CallKey = tuple[str, str]
"""(tenant id, conversation id): how every call row is keyed."""


@dataclass
class InMemoryCallStore:
    """Call logs, callbacks and health answers in dicts (CallRecords, CallbackBook, HealthRecords).

    Attributes:
        call_logs: Call logs by (tenant, conversation).
        callbacks: Callbacks by (tenant, conversation) (at most one each).
        health_answers: Per (tenant, conversation), the answers by question.
    """

    call_logs: dict[CallKey, CallLogEntry] = field(default_factory=dict)
    callbacks: dict[CallKey, ScheduledCallback] = field(default_factory=dict)
    health_answers: dict[CallKey, dict[str, HealthAnswer]] = field(default_factory=dict)

    def get_call_log(self, tenant_id: str, conversation_id: str) -> CallLogEntry | None:
        """Return the call log, or None."""
        return self.call_logs.get((tenant_id, conversation_id))

    def save_call_log(self, entry: CallLogEntry) -> None:
        """Insert or replace the call log of the entry's tenant and conversation."""
        self.call_logs[(entry.tenant_id, entry.conversation_id)] = entry

    def schedule_callback(
        self,
        *,
        tenant_id: str,
        conversation_id: str,
        due_at: datetime,
        reason: str,
        phone: str | None = None,
        agent_id: str | None = None,
    ) -> bool:
        """Record a scheduled callback; False (and no change) when one exists."""
        if (tenant_id, conversation_id) in self.callbacks:
            return False
        self.callbacks[(tenant_id, conversation_id)] = ScheduledCallback(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            due_at=due_at,
            reason=reason,
            phone=phone,
            agent_id=agent_id,
        )
        return True

    def has_health_answers(self, tenant_id: str, conversation_id: str) -> bool:
        """Whether at least one answer is stored for the conversation."""
        return bool(self.health_answers.get((tenant_id, conversation_id)))

    def save_health_answers(
        self, *, tenant_id: str, conversation_id: str, answers: Sequence[HealthAnswer]
    ) -> None:
        """Upsert the answers, keyed by tenant, conversation and question."""
        stored = self.health_answers.setdefault((tenant_id, conversation_id), {})
        for answer in answers:
            stored[answer.question] = answer


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

    vendor: str | None = None

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

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete the records with these ids (absent ones are ignored)."""
        stored = self.namespaces.get(namespace, {})
        for record_id in ids:
            stored.pop(record_id, None)

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
    vendor: str | None = None

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
    An unscripted conversation raises ``PermanentError``, as the real platform's 404,
    and so does a snapshot whose status is ``failed``, as the real sources do.

    Attributes:
        snapshots: The remaining snapshots per conversation id.
        fetches: Conversation ids in the order they were fetched.
    """

    vendor: str | None = None

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
        snapshot = queue.pop(0) if len(queue) > 1 else queue[0]
        if snapshot.status == "failed":
            # As the real sources do: a conversation that failed on the platform is final.
            raise PermanentError(f"conversation {conversation_id} failed on the platform")
        return snapshot


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

    vendor: str | None = None

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


@dataclass
class RecordingProgress:
    """Job progress that records every report as a tuple (JobProgress).

    Attributes:
        events: ``("started", job, key)``, ``("succeeded", job, key, child keys)``,
            ``("failed", job, key, error, dead letter id)``.
    """

    events: list[tuple[object, ...]] = field(default_factory=list)

    def message_started(self, job_id: str, message: MessageRef) -> None:
        """Record a start."""
        self.events.append(("started", job_id, message.key))

    def message_succeeded(
        self, job_id: str, message: MessageRef, *, children: Sequence[MessageRef] = ()
    ) -> None:
        """Record a success with the keys of the children."""
        self.events.append(("succeeded", job_id, message.key, [c.key for c in children]))

    def message_failed(
        self, job_id: str, message: MessageRef, *, error: str, dead_letter_id: str | None
    ) -> None:
        """Record a failure."""
        self.events.append(("failed", job_id, message.key, error, dead_letter_id))


@dataclass
class RecordingDeferral:
    """Counts deferrals instead of re-enqueueing (Deferral)."""

    deferred: int = 0

    def defer(self) -> int:
        """Count one deferral; return a fixed delay."""
        self.deferred += 1
        return 1000


@dataclass
class FixedDialPlan:
    """A dial plan (DialPlan) that queues a fixed list of calls under the claiming job.

    Like the SQL call book, a second claim by the same job returns the calls still
    queued under it; ``claims`` records every (kind, slot, job) asked for.
    """

    daily: list[OutboundCall] = field(default_factory=list)
    callbacks: list[OutboundCall] = field(default_factory=list)
    claims: list[tuple[str, datetime, str]] = field(default_factory=list)

    def claim_daily_calls(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """The daily calls, stamped with the job."""
        self.claims.append(("daily", slot, job_id))
        return [c.model_copy(update={"job_id": job_id}) for c in self.daily]

    def claim_callbacks(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """The callback calls, stamped with the job."""
        self.claims.append(("callbacks", slot, job_id))
        return [c.model_copy(update={"job_id": job_id}) for c in self.callbacks]


@dataclass
class InMemoryCallBook:
    """The placement states of calls (CallBook), as the SQL call book moves them."""

    statuses: dict[str, str] = field(default_factory=dict)
    provider_ids: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def start_placing(self, call_id: str) -> bool:
        """queued → placing; placing (an interrupted delivery) → unknown."""
        status = self.statuses.get(call_id)
        if status == "queued":
            self.statuses[call_id] = "placing"
            return True
        if status == "placing":
            self.statuses[call_id] = "unknown"
        return False

    def placed(self, call_id: str, provider_call_id: str) -> None:
        """Record the provider's id; placing → placed."""
        self.provider_ids[call_id] = provider_call_id
        if self.statuses.get(call_id) == "placing":
            self.statuses[call_id] = "placed"

    def requeue(self, call_id: str, error: str) -> None:
        """placing → queued."""
        if self.statuses.get(call_id) == "placing":
            self.statuses[call_id] = "queued"
            self.errors[call_id] = error

    def fail(self, call_id: str, error: str, *, unknown: bool = False) -> None:
        """queued/placing → failed (or unknown)."""
        if self.statuses.get(call_id) in ("queued", "placing"):
            self.statuses[call_id] = "unknown" if unknown else "failed"
            self.errors[call_id] = error


@dataclass
class FakeTelephony:
    """A telephony provider (Telephony) that records placements and can fail.

    Attributes:
        placed: Every command it accepted, in order.
        failure: Raised by the next ``place`` instead of placing (then cleared).
        vendor: The vendor name, or None like a local adapter.
    """

    placed: list[PlaceCall] = field(default_factory=list)
    failure: SwitchboardError | None = None
    vendor: str | None = None

    def place(self, command: PlaceCall) -> str:
        """Accept the call (or raise the set failure); return ``prov-<n>``."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        self.placed.append(command)
        return f"prov-{len(self.placed)}"
