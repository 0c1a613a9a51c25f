"""Finding and deleting a call's vectors in the vector index, by their deterministic ids.

``index_call`` upserts a call's vectors into its tenant's namespace under
``<conversation>#summary`` and ``<conversation>#transcript-<n>``, n = 0, 1, … with no
gap. Deleting by those ids works on every index we support: Pinecone serverless
indexes refuse a delete by metadata filter, and a pod-based index cannot list ids by
prefix, while every index fetches and deletes by id.

How many transcript chunks a call has is not recorded, so the ids are probed: each
round fetches the summary and the next ``WINDOW`` chunk ids of every call still open,
and a call stays open while the last chunk of its window exists. Calls are probed
together, ``FETCH_BATCH`` ids to a request, so a batch of a hundred calls of about
six vectors each costs a handful of fetches and one delete per tenant. A fetch returns
the vectors' values too (Pinecone's fetch has no ids-only form): about 120 KB of JSON
per call of six 1536-dimension vectors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from contracts.values import (
    VectorRecord,
    summary_vector_id,
    tenant_namespace,
    transcript_vector_id,
)
from infra.store.erasure import CallKey

WINDOW = 16
"""Transcript chunk ids probed per call and round (most calls have fewer)."""

FETCH_BATCH = 100
"""Ids per fetch request (Pinecone fetches by GET: the ids travel in the URL)."""


class VectorEraser(Protocol):
    """The part of a vector index erasure uses (every adapter in ``infra`` has it)."""

    def fetch(self, namespace: str, ids: Sequence[str]) -> list[VectorRecord]:
        """Return the records with these ids that exist, in any order."""
        ...

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete the records with these ids (ids that are not there are ignored)."""
        ...


def _existing(index: VectorEraser, namespace: str, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), FETCH_BATCH):
        found.update(
            record.id for record in index.fetch(namespace, ids[start : start + FETCH_BATCH])
        )
    return found


def _namespace_ids(index: VectorEraser, namespace: str, conversations: Sequence[str]) -> list[str]:
    """Every stored vector id of these conversations of one namespace."""
    found: list[str] = []
    first = dict.fromkeys(conversations, 0)
    probe_summary = set(conversations)
    while first:
        wanted: list[str] = []
        for conversation, chunk in first.items():
            if conversation in probe_summary:
                wanted.append(summary_vector_id(conversation))
            wanted += [transcript_vector_id(conversation, n) for n in range(chunk, chunk + WINDOW)]
        probe_summary.clear()
        existing = _existing(index, namespace, wanted)
        found += [vector_id for vector_id in wanted if vector_id in existing]
        first = {
            conversation: chunk + WINDOW
            for conversation, chunk in first.items()
            if transcript_vector_id(conversation, chunk + WINDOW - 1) in existing
        }
    return found


def call_vector_ids(index: VectorEraser, calls: Sequence[CallKey]) -> dict[str, list[str]]:
    """The stored vector ids of these calls, per namespace (namespaces with none left out).

    Raises:
        TransientError: The index could not be reached.
        PermanentError: The index refused a request.
    """
    by_namespace: dict[str, list[str]] = defaultdict(list)
    for call in sorted(set(calls)):
        by_namespace[tenant_namespace(call.tenant_id)].append(call.conversation_id)
    found = {
        namespace: _namespace_ids(index, namespace, conversations)
        for namespace, conversations in by_namespace.items()
    }
    return {namespace: ids for namespace, ids in found.items() if ids}


def delete_call_vectors(index: VectorEraser, calls: Sequence[CallKey]) -> int:
    """Delete every vector of these calls; return how many there were.

    Idempotent: a second run finds none and deletes nothing.

    Raises:
        TransientError: The index could not be reached (some may be deleted already:
            run again).
        PermanentError: The index refused a request.
    """
    deleted = 0
    for namespace, ids in call_vector_ids(index, calls).items():
        index.delete(namespace, ids)
        deleted += len(ids)
    return deleted
