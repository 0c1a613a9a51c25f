"""Qdrant behind the ``VectorIndex`` port.

One collection (cosine distance, created on the first upsert); a tenant's namespace is
a payload field every read filters on. Qdrant point ids must be UUIDs or integers, so
a record's id maps to ``uuid5(NAMESPACE_URL, "<namespace>/<id>")`` (deterministic: an
upsert replaces) and the original id travels in the payload. Cosine collections store
vectors normalised, so ``fetch`` returns unit-length values.

Payload layout: ``{"namespace": str, "record_id": str, "metadata": {...}}``.

Errors: HTTP 429/5xx and transport failures → ``TransientError``; other 4xx and
rejected arguments (wrong dimension...) → ``PermanentError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from contracts.errors import PermanentError, TransientError
from contracts.values import VectorMatch, VectorRecord

NAMESPACE_FIELD = "namespace"
ID_FIELD = "record_id"
METADATA_FIELD = "metadata"


def point_id(namespace: str, record_id: str) -> str:
    """The Qdrant point id of ``record_id`` in ``namespace`` (a UUID5)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{record_id}"))


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn qdrant-client exceptions raised inside the block into Transient/Permanent."""
    try:
        yield
    except ResponseHandlingException as exc:
        raise TransientError(f"Qdrant {action} failed: {exc}") from exc
    except UnexpectedResponse as exc:
        status = exc.status_code or 0
        if status == 429 or status >= 500:
            raise TransientError(f"Qdrant {action} failed: {exc}") from exc
        raise PermanentError(f"Qdrant rejected {action}: {exc}") from exc
    except (ValueError, AssertionError) as exc:
        # The in-process engine reports bad arguments (e.g. a wrong dimension) this way.
        raise PermanentError(f"Qdrant rejected {action}: {exc}") from exc
    except OSError as exc:
        raise TransientError(f"Qdrant {action} failed: {exc}") from exc


class QdrantVectorIndex:
    """A Qdrant collection holding every tenant's vectors, partitioned by payload."""

    vendor: str | None = "qdrant"
    """The vendor whose throttle applies."""

    def __init__(self, client: QdrantClient, collection: str, dimensions: int) -> None:
        self._client = client
        self._collection = collection
        self._dimensions = dimensions
        self._ready = False

    @property
    def label(self) -> str:
        """``qdrant:<collection>`` for logs and health checks."""
        return f"qdrant:{self._collection}"

    @property
    def dimensions(self) -> int:
        """The vector length the collection is created with."""
        return self._dimensions

    def _exists(self) -> bool:
        if not self._ready:
            with translated_errors("collection lookup"):
                self._ready = self._client.collection_exists(self._collection)
        return self._ready

    def _ensure_collection(self) -> None:
        if self._exists():
            return
        with translated_errors("collection creation"):
            self._client.create_collection(
                collection_name=self._collection,
                vectors_config=models.VectorParams(
                    size=self._dimensions, distance=models.Distance.COSINE
                ),
            )
        self._ready = True

    @staticmethod
    def _in_namespace(namespace: str, kind: str | None = None) -> models.Filter:
        conditions: list[models.Condition] = [
            models.FieldCondition(key=NAMESPACE_FIELD, match=models.MatchValue(value=namespace))
        ]
        if kind is not None:
            conditions.append(
                models.FieldCondition(
                    key=f"{METADATA_FIELD}.kind", match=models.MatchValue(value=kind)
                )
            )
        return models.Filter(must=conditions)

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id (idempotent: point ids are deterministic)."""
        if not records:
            return
        self._ensure_collection()
        points = [
            models.PointStruct(
                id=point_id(namespace, record.id),
                vector=list(record.values),
                payload={
                    NAMESPACE_FIELD: namespace,
                    ID_FIELD: record.id,
                    METADATA_FIELD: dict(record.metadata),
                },
            )
            for record in records
        ]
        with translated_errors("upsert"):
            self._client.upsert(collection_name=self._collection, points=points, wait=True)

    def fetch(self, namespace: str, ids: Sequence[str]) -> list[VectorRecord]:
        """Return the records with these ids that exist in ``namespace``."""
        if not ids or not self._exists():
            return []
        with translated_errors("retrieve"):
            points = self._client.retrieve(
                collection_name=self._collection,
                ids=[point_id(namespace, record_id) for record_id in ids],
                with_payload=True,
                with_vectors=True,
            )
        return [
            VectorRecord(
                id=str(payload[ID_FIELD]),
                values=_dense(point.vector),
                metadata=dict(payload.get(METADATA_FIELD) or {}),
            )
            for point in points
            if (payload := point.payload or {}).get(NAMESPACE_FIELD) == namespace
        ]

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete the records with these ids from ``namespace`` (absent ids are ignored)."""
        if not ids or not self._exists():
            return
        points: list[models.ExtendedPointId] = sorted(
            {point_id(namespace, record_id) for record_id in ids}
        )
        with translated_errors("delete"):
            self._client.delete(
                collection_name=self._collection,
                points_selector=models.PointIdsList(points=points),
                wait=True,
            )

    def query(
        self,
        namespace: str,
        vector: Sequence[float],
        *,
        top_k: int,
        kind: str | None = None,
    ) -> list[VectorMatch]:
        """Return up to ``top_k`` nearest records of ``namespace`` (cosine), best first."""
        if not self._exists():
            return []
        with translated_errors("query"):
            response = self._client.query_points(
                collection_name=self._collection,
                query=list(vector),
                query_filter=self._in_namespace(namespace, kind),
                limit=top_k,
                with_payload=True,
            )
        return [
            VectorMatch(
                id=str((point.payload or {})[ID_FIELD]),
                score=point.score,
                metadata=dict((point.payload or {}).get(METADATA_FIELD) or {}),
            )
            for point in response.points
        ]

    def ping(self) -> None:
        """Check the server answers (``get_collections``).

        Raises:
            TransientError: Qdrant is unreachable, timed out, or answered 429/5xx.
            PermanentError: Qdrant refused the request (a wrong API key...).
        """
        with translated_errors("get_collections"):
            self._client.get_collections()

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def _dense(vector: Any) -> list[float]:
    if isinstance(vector, list):
        return [float(value) for value in vector]
    raise PermanentError(f"Qdrant returned a vector of unexpected shape: {type(vector).__name__}")
