"""A local stand-in of Pinecone's data plane (the HTTP paths SDK 10 calls).

``POST /vectors/upsert``, ``GET /vectors/fetch?ids=..&namespace=..``, ``POST /query``
(cosine, namespace, metadata filter with ``$eq``/``$ne``/``$in``/``$and`` or a bare
value), ``POST /vectors/delete`` (by ids, or ``deleteAll``) and
``POST /describe_index_stats``; the ``Api-Key`` header is checked and vectors of the
wrong dimension are rejected with 400, as Pinecone does. Like a serverless index, it
refuses a delete by metadata filter and more than 1,000 ids in one delete.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from tests.standins.server_base import Reply, Request, StandInServer

MAX_DELETE_IDS = 1000
"""Most ids Pinecone takes in one delete request."""


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, body={"error": {"code": "INVALID_ARGUMENT", "message": message}})


def matches_filter(metadata: Mapping[str, Any], condition: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies a Pinecone metadata filter (the subset we use)."""
    for key, expected in condition.items():
        if key == "$and":
            if not all(matches_filter(metadata, part) for part in expected):
                return False
            continue
        value = metadata.get(key)
        operators = expected if isinstance(expected, Mapping) else {"$eq": expected}
        for operator, operand in operators.items():
            if operator == "$eq" and value != operand:
                return False
            if operator == "$ne" and value == operand:
                return False
            if operator == "$in" and value not in operand:
                return False
    return True


def _cosine(left: list[float], right: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in left)) * math.sqrt(sum(y * y for y in right))
    return sum(x * y for x, y in zip(left, right, strict=True)) / norm if norm else 0.0


class PineconeStandIn(StandInServer):
    """The stand-in index: ``url`` is the data-plane host to give the SDK."""

    def __init__(self, *, dimension: int, api_key: str = "pc-test") -> None:
        super().__init__()
        self.dimension = dimension
        self.api_key = api_key
        self.namespaces: dict[str, dict[str, dict[str, Any]]] = {}
        self._data_lock = threading.Lock()

    def handle(self, request: Request) -> Reply:
        """Route to the data-plane endpoints."""
        if request.headers.get("api-key") != self.api_key:
            return Reply(status=401, body={"error": {"code": "UNAUTHENTICATED"}})
        routes = {
            ("POST", "/vectors/upsert"): self._upsert,
            ("GET", "/vectors/fetch"): self._fetch,
            ("POST", "/query"): self._query,
            ("POST", "/vectors/delete"): self._delete,
            ("POST", "/describe_index_stats"): self._stats,
        }
        route = routes.get((request.method, request.path))
        if route is None:
            return _error(404, f"no route {request.method} {request.path}")
        with self._data_lock:
            return route(request)

    def _upsert(self, request: Request) -> Reply:
        body = request.json()
        vectors = body.get("vectors", [])
        for vector in vectors:
            if len(vector.get("values", [])) != self.dimension:
                return _error(400, f"Vector dimension does not match {self.dimension}")
            for value in (vector.get("metadata") or {}).values():
                if value is None or isinstance(value, dict):
                    return _error(400, "Metadata values must be string, number, bool or list")
        space = self.namespaces.setdefault(body.get("namespace", ""), {})
        for vector in vectors:
            space[vector["id"]] = {
                "id": vector["id"],
                "values": vector["values"],
                "metadata": vector.get("metadata") or {},
            }
        return Reply(body={"upsertedCount": len(vectors)})

    def _fetch(self, request: Request) -> Reply:
        namespace = (request.query.get("namespace") or [""])[0]
        space = self.namespaces.get(namespace, {})
        found = {vid: space[vid] for vid in request.query.get("ids", []) if vid in space}
        return Reply(body={"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}})

    def _delete(self, request: Request) -> Reply:
        body = request.json() or {}
        if body.get("filter"):
            return _error(400, "Serverless indexes do not support deleting by metadata")
        space = self.namespaces.get(body.get("namespace", ""), {})
        if body.get("deleteAll"):
            space.clear()
            return Reply(body={})
        ids = body.get("ids") or []
        if len(ids) > MAX_DELETE_IDS:
            return _error(400, f"Cannot delete more than {MAX_DELETE_IDS} ids at once")
        for vector_id in ids:
            space.pop(vector_id, None)
        return Reply(body={})

    def _query(self, request: Request) -> Reply:
        body = request.json()
        vector = body.get("vector") or []
        if len(vector) != self.dimension:
            return _error(400, f"Query vector dimension does not match {self.dimension}")
        condition = body.get("filter") or {}
        candidates = [
            record
            for record in self.namespaces.get(body.get("namespace", ""), {}).values()
            if matches_filter(record["metadata"], condition)
        ]
        scored = sorted(
            ((_cosine(vector, record["values"]), record) for record in candidates),
            key=lambda pair: (-pair[0], pair[1]["id"]),
        )[: int(body["topK"])]
        matches = [
            {
                "id": record["id"],
                "score": score,
                "values": record["values"] if body.get("includeValues") else [],
                **({"metadata": record["metadata"]} if body.get("includeMetadata") else {}),
            }
            for score, record in scored
        ]
        return Reply(body={"matches": matches, "namespace": body.get("namespace", "")})

    def _stats(self, request: Request) -> Reply:  # noqa: ARG002 (uniform route signature)
        counts = {name: {"vectorCount": len(space)} for name, space in self.namespaces.items()}
        return Reply(
            body={
                "namespaces": counts,
                "dimension": self.dimension,
                "indexFullness": 0.0,
                "totalVectorCount": sum(len(space) for space in self.namespaces.values()),
                "metric": "cosine",
            }
        )
