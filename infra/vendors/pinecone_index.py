"""Pinecone (SDK 10, HTTP data plane) behind the ``VectorIndex`` port.

One index; each tenant is a Pinecone namespace. The data-plane host is taken from the
settings (or the ``host`` override, which tests point at a local stand-in) or, when
only the index name is known, resolved with one describe call on first use.

Errors the SDK raises, and what they become::

    pinecone.PineconeError
    ├── PineconeTimeoutError, PineconeConnectionError ...... TransientError
    ├── ApiError
    │   ├── RateLimitError (429), ServiceError (5xx) ....... TransientError
    │   └── 400, 401, 403, 404, 409, 412, 413 .............. PermanentError
    ├── ResponseParsingError ............................... TransientError
    └── PineconeValueError / TypeError, the rest ........... PermanentError

The SDK retries 408/429/5xx itself (three times, jittered backoff from 0.25 s); the
data-plane client offers no knob to lower that, so ``timeout_s`` is kept short instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pinecone import Pinecone
from pinecone.errors.exceptions import (
    ApiError,
    PineconeConnectionError,
    PineconeError,
    PineconeTimeoutError,
    RateLimitError,
    ResponseParsingError,
    ServiceError,
)
from pinecone.index import Index

from contracts.errors import PermanentError, TransientError
from contracts.values import VectorMatch, VectorRecord
from infra.settings import PineconeSettings

MetadataValue = str | int | float | bool | list[str]

DELETE_BATCH = 1000
"""Most ids one delete request may carry (Pinecone's limit)."""


def sanitize_metadata(metadata: Mapping[str, Any]) -> dict[str, MetadataValue]:
    """Metadata in Pinecone's types: str, number, bool, list of str.

    ``None`` and non-finite numbers are dropped (Pinecone rejects them); lists become
    lists of strings; anything else (dicts, datetimes) becomes its JSON or ``str`` form.
    """
    clean: dict[str, MetadataValue] = {}
    for key, value in metadata.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        if isinstance(value, str | bool | int | float):
            clean[key] = value
        elif isinstance(value, list | tuple | set | frozenset):
            clean[key] = [str(item) for item in value]
        elif isinstance(value, dict):
            clean[key] = json.dumps(value, sort_keys=True, default=str)
        else:
            clean[key] = str(value)
    return clean


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn the SDK's exceptions raised inside the block into Transient/Permanent errors."""
    try:
        yield
    except (PineconeTimeoutError, PineconeConnectionError, ResponseParsingError) as exc:
        raise TransientError(f"Pinecone {action} failed: {exc}") from exc
    except (RateLimitError, ServiceError) as exc:
        raise TransientError(f"Pinecone {action} failed: {exc}") from exc
    except ApiError as exc:
        if exc.status_code >= 500 or exc.status_code == 408:
            raise TransientError(f"Pinecone {action} failed: {exc}") from exc
        raise PermanentError(f"Pinecone rejected {action}: {exc}") from exc
    except PineconeError as exc:
        raise PermanentError(f"Pinecone {action} failed: {exc}") from exc


class PineconeVectorIndex:
    """A Pinecone index; namespaces are tenants, ``kind`` filters with ``$eq``."""

    vendor: str | None = "pinecone"
    """The vendor whose throttle applies."""

    def __init__(self, client: Pinecone, *, index_name: str | None, host: str | None) -> None:
        if not (index_name or host):
            raise ValueError("Pinecone needs an index name or an index host")
        self._client = client
        self._index_name = index_name
        self._host = host
        self._index: Index | None = None

    @classmethod
    def from_settings(
        cls, settings: PineconeSettings, *, host: str | None = None
    ) -> PineconeVectorIndex:
        """Build from the settings; ``host`` overrides the data-plane host (tests, proxies).

        Raises:
            ValueError: No API key, or neither index name nor host.
        """
        if settings.api_key is None:
            raise ValueError("pinecone.api_key is not set")
        client = Pinecone(api_key=settings.api_key.get_secret_value(), timeout=settings.timeout_s)
        return cls(client, index_name=settings.index_name, host=host or settings.index_host)

    @property
    def label(self) -> str:
        """``pinecone:<index name or host>`` for logs and health checks."""
        return f"pinecone:{self._index_name or self._host}"

    def _data_plane(self) -> Index:
        if self._index is None:
            with translated_errors("index lookup"):
                if self._host:
                    self._index = self._client.index(host=self._host)
                else:
                    self._index = self._client.index(name=self._index_name or "")
        return self._index

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id (idempotent)."""
        if not records:
            return
        vectors = [
            {"id": r.id, "values": list(r.values), "metadata": sanitize_metadata(r.metadata)}
            for r in records
        ]
        index = self._data_plane()
        with translated_errors("upsert"):
            index.upsert(vectors=vectors, namespace=namespace, show_progress=False)

    def fetch(self, namespace: str, ids: Sequence[str]) -> list[VectorRecord]:
        """Return the records with these ids that exist."""
        if not ids:
            return []
        index = self._data_plane()
        with translated_errors("fetch"):
            response = index.fetch(ids=list(ids), namespace=namespace)
        return [
            VectorRecord(id=vid, values=list(vector.values), metadata=dict(vector.metadata or {}))
            for vid, vector in response.vectors.items()
        ]

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete the records with these ids (Pinecone ignores ids it does not hold).

        By ids, never by metadata filter: serverless indexes refuse deleting by
        metadata. At most ``DELETE_BATCH`` ids go in one request, Pinecone's limit.
        """
        unique = sorted(set(ids))
        if not unique:
            return
        index = self._data_plane()
        for start in range(0, len(unique), DELETE_BATCH):
            with translated_errors("delete"):
                index.delete(ids=unique[start : start + DELETE_BATCH], namespace=namespace)

    def query(
        self,
        namespace: str,
        vector: Sequence[float],
        *,
        top_k: int,
        kind: str | None = None,
    ) -> list[VectorMatch]:
        """Return up to ``top_k`` nearest records (cosine), best first."""
        index = self._data_plane()
        with translated_errors("query"):
            response = index.query(
                vector=list(vector),
                top_k=top_k,
                namespace=namespace,
                filter={"kind": {"$eq": kind}} if kind is not None else None,
                include_metadata=True,
            )
        return [
            VectorMatch(id=match.id, score=match.score, metadata=dict(match.metadata or {}))
            for match in response.matches
        ]

    def ping(self) -> None:
        """Check the index answers (``describe_index_stats``).

        Raises:
            TransientError: Pinecone is unreachable or failing.
            PermanentError: The key or index is wrong.
        """
        index = self._data_plane()
        with translated_errors("describe_index_stats"):
            index.describe_index_stats()

    def close(self) -> None:
        """Close the data-plane and control-plane connections."""
        if self._index is not None:
            self._index.close()
        self._client.close()
