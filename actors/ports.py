"""The ports pipeline steps depend on.

Steps import these Protocols (and contracts) only; adapters in ``infra`` implement them
structurally and are wired at the worker's root. Every adapter raises
``contracts.errors.TransientError`` or ``PermanentError``, never a vendor exception.

Adapters of a rate-limited vendor name it (``vendor``: ``openai``, ``pinecone``…); the
worker holds that vendor's throttle while a step calls it. Local adapters name none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from contracts import CallAnalysis, HealthAnswer, TranscriptTurn
from contracts.daily_calls import PlaceCall
from contracts.values import (
    CallLogEntry,
    ConversationSnapshot,
    OutboundCall,
    VectorMatch,
    VectorRecord,
)


class VendorClient(Protocol):
    """An adapter that may call a rate-limited vendor."""

    @property
    def vendor(self) -> str | None:
        """The vendor whose limits apply (e.g. ``openai``); None for a local adapter."""
        ...


class TranscriptSource(VendorClient, Protocol):
    """Where finished conversations are fetched from (the voice platform's API)."""

    def fetch(self, conversation_id: str) -> ConversationSnapshot:
        """Return the conversation as it is now; ``status`` says whether it is done.

        Raises:
            PermanentError: The conversation does not exist or access is denied.
            TransientError: The platform could not be reached or answered 5xx/429.
        """
        ...


class Analyzer(VendorClient, Protocol):
    """Summarises a call and detects callback requests in one pass."""

    @property
    def name(self) -> str:
        """Label stored with each analysis, e.g. ``local`` or ``openai:gpt-4o-mini``."""
        ...

    def analyze(
        self, transcript: Sequence[TranscriptTurn], *, reference_time: datetime, timezone: str
    ) -> CallAnalysis:
        """Analyze a transcript.

        Args:
            transcript: The call's turns, in order.
            reference_time: When the call happened; relative times ("tomorrow at 5")
                resolve against it.
            timezone: The tenant's IANA zone, for local times the caller mentions.
        """
        ...


class Embedder(VendorClient, Protocol):
    """Turns texts into vectors of a fixed dimension."""

    @property
    def dimensions(self) -> int:
        """Length of every vector returned."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts, one vector per text, in order."""
        ...


class VectorIndex(VendorClient, Protocol):
    """A vector store partitioned into namespaces (one per tenant)."""

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id (idempotent)."""
        ...

    def fetch(self, namespace: str, ids: Sequence[str]) -> list[VectorRecord]:
        """Return the records with these ids that exist, in any order."""
        ...

    def query(
        self,
        namespace: str,
        vector: Sequence[float],
        *,
        top_k: int,
        kind: str | None = None,
    ) -> list[VectorMatch]:
        """Return up to ``top_k`` nearest records, best first.

        Args:
            namespace: The tenant's namespace.
            vector: The query vector.
            top_k: How many matches at most.
            kind: When set, only records whose metadata ``kind`` equals it.
        """
        ...


class CallRecords(Protocol):
    """Persisted call logs, one per tenant and conversation."""

    def get_call_log(self, tenant_id: str, conversation_id: str) -> CallLogEntry | None:
        """Return the call log, or None when the call was not persisted yet."""
        ...

    def save_call_log(self, entry: CallLogEntry) -> None:
        """Insert or update the call log of the entry's tenant and conversation (idempotent)."""
        ...


class CallbackBook(Protocol):
    """Due callbacks, emitted later by scheduler ticks (never broker delays)."""

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
        """Record a callback due at ``due_at`` with status ``scheduled``.

        ``phone`` is the caller's number; without one the callback cannot be placed.

        Returns:
            False when this tenant's conversation already had one (nothing changes).
        """
        ...


class CheckpointReader(Protocol):
    """The live-call service's checkpoint state of a call."""

    def read_answers(self, thread_id: str) -> list[HealthAnswer] | None:
        """Return the health answers in the thread's checkpoint, or None if it is gone.

        Raises:
            PermanentError: The checkpoint exists but cannot be parsed.
        """
        ...

    def delete(self, thread_id: str) -> None:
        """Delete the checkpoint thread (no error when it is already gone)."""
        ...


class HealthRecords(Protocol):
    """Persisted health-check answers."""

    def has_health_answers(self, tenant_id: str, conversation_id: str) -> bool:
        """Whether answers were already persisted for this tenant's conversation."""
        ...

    def save_health_answers(
        self, *, tenant_id: str, conversation_id: str, answers: Sequence[HealthAnswer]
    ) -> None:
        """Insert or update the answers, keyed by tenant, conversation and question."""
        ...


class DialPlan(Protocol):
    """What a tick claims: the calls due at a slot, each queued once under the tick's job."""

    def claim_daily_calls(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """Queue the daily calls and retries due at ``slot`` under ``job_id``.

        Users more than the grace window late get a ``missed`` call instead. Returns
        every call still ``queued`` under ``job_id``, including those a previous
        delivery of the same tick queued but did not publish.
        """
        ...

    def claim_callbacks(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """Queue the callbacks due at ``slot`` (``unplaceable`` without a number).

        Returns every call still ``queued`` under ``job_id``, as ``claim_daily_calls``.
        """
        ...


class CallBook(Protocol):
    """An outbound call's placement: the states around the provider's request."""

    def start_placing(self, call_id: str) -> bool:
        """Move a ``queued`` call to ``placing``; False when it is not queued any more.

        A call found in ``placing`` was being placed by a delivery that died
        mid-request: it is marked ``unknown`` (the provider may have it) and False is
        returned, so a call is never placed twice.
        """
        ...

    def placed(self, call_id: str, provider_call_id: str) -> None:
        """Record that the provider took the call."""
        ...

    def requeue(self, call_id: str, error: str) -> None:
        """Put a call whose request never reached the provider back to ``queued``."""
        ...

    def fail(self, call_id: str, error: str, *, unknown: bool = False) -> None:
        """Record that placing failed (``unknown``: it may have been placed)."""
        ...


class Telephony(VendorClient, Protocol):
    """The telephony provider: places outbound calls; their statuses come by webhook."""

    def place(self, command: PlaceCall) -> str:
        """Ask the provider to call ``command.phone``; return the provider's call id.

        Raises:
            TransientError: The request did not reach the provider (or it answered
                5xx/429): placing again is safe.
            PermanentError: The provider refused the call (4xx).
            OutcomeUnknown: The request was sent but no answer came back.
        """
        ...
