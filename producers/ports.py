"""Ports the HTTP resources need beyond the store's protocols.

Producers must not import ``actors``, so the read side of the vector index is declared
here again (the local, Pinecone and Qdrant adapters in ``infra`` satisfy it
structurally).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.values import VectorMatch, VectorRecord


class SimilarityIndex(Protocol):
    """The read side of a namespaced vector index (one namespace per tenant)."""

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
