"""The local vector index: vectors in the SQL store, cosine similarity in Python.

The default when no Pinecone or Qdrant is configured. It implements
``actors.ports.VectorIndex`` and ``infra.call_vectors.VectorEraser`` structurally.
Queries read the whole namespace (one tenant's calls) and rank it in Python: exact, and
fast enough for the thousands of vectors a local installation holds; production uses a
real vector database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa

from contracts.errors import PermanentError
from contracts.values import VectorMatch, VectorRecord
from infra.store.engine import dialect_insert, transaction
from infra.store.jobs import utc_now
from infra.store.tables import VECTORS

_CHUNK = 500
"""Ids per ``IN (...)`` list: well under SQLite's bound-parameter limit."""

_VALUES = VECTORS.c["values"]
_METADATA = VECTORS.c["metadata"]


class SqlVectorIndex:
    """``VectorIndex`` on the SQL store, keyed by (namespace, id).

    Raises (every method):
        TransientError: The database is unavailable.
    """

    vendor: str | None = None
    """A local adapter: no vendor, no throttle."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id (idempotent; the last of repeated ids wins)."""
        by_id = {record.id: record for record in records}
        if not by_id:
            return
        now = self._clock()
        rows = [
            {
                "namespace": namespace,
                "id": record.id,
                "kind": _kind(record.metadata.get("kind")),
                "values": list(record.values),
                "metadata": dict(record.metadata),
                "updated_at": now,
            }
            for record in by_id.values()
        ]
        with transaction(self._engine) as conn:
            stmt = dialect_insert(conn, VECTORS)
            upsert = stmt.on_conflict_do_update(
                index_elements=["namespace", "id"],
                set_={
                    "kind": stmt.excluded.kind,
                    "values": stmt.excluded["values"],
                    "metadata": stmt.excluded["metadata"],
                    "updated_at": stmt.excluded.updated_at,
                },
            )
            conn.execute(upsert, rows)

    def fetch(self, namespace: str, ids: Sequence[str]) -> list[VectorRecord]:
        """Return the records with these ids that exist, ordered by id."""
        if not ids:
            return []
        query = (
            sa.select(VECTORS.c.id, _VALUES, _METADATA)
            .where(VECTORS.c.namespace == namespace, VECTORS.c.id.in_(list(ids)))
            .order_by(VECTORS.c.id)
        )
        with transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [VectorRecord(id=row[0], values=row[1], metadata=row[2]) for row in rows]

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete the records with these ids (ids that are not there are ignored)."""
        unique = sorted(set(ids))
        with transaction(self._engine) as conn:
            for start in range(0, len(unique), _CHUNK):
                conn.execute(
                    sa.delete(VECTORS).where(
                        VECTORS.c.namespace == namespace,
                        VECTORS.c.id.in_(unique[start : start + _CHUNK]),
                    )
                )

    def query(
        self,
        namespace: str,
        vector: Sequence[float],
        *,
        top_k: int,
        kind: str | None = None,
    ) -> list[VectorMatch]:
        """Return up to ``top_k`` records by cosine similarity, best first (ties by id).

        Raises:
            PermanentError: A stored vector's dimension differs from the query's.
        """
        if top_k <= 0:
            return []
        query = sa.select(VECTORS.c.id, _VALUES, _METADATA).where(VECTORS.c.namespace == namespace)
        if kind is not None:
            query = query.where(VECTORS.c.kind == kind)
        with transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        matches = [
            VectorMatch(id=row[0], score=_cosine(vector, row[1], row[0]), metadata=row[2])
            for row in rows
        ]
        matches.sort(key=lambda match: (-match.score, match.id))
        return matches[:top_k]


def _kind(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _cosine(query: Sequence[float], stored: Sequence[float], vector_id: str) -> float:
    if len(query) != len(stored):
        raise PermanentError(
            f"vector {vector_id!r} has {len(stored)} dimensions, the query has {len(query)}"
        )
    norms = math.sqrt(sum(q * q for q in query)) * math.sqrt(sum(s * s for s in stored))
    if norms == 0.0:
        return 0.0
    return sum(q * s for q, s in zip(query, stored, strict=True)) / norms
