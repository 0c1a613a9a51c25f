from __future__ import annotations

import pytest
import sqlalchemy as sa

from contracts.errors import PermanentError
from contracts.values import VectorRecord
from infra.store.tables import VECTORS
from infra.store.vectors import SqlVectorIndex

NS = "tenant-acme"


def _record(vector_id: str, values: list[float], kind: str = "summary") -> VectorRecord:
    return VectorRecord(
        id=vector_id,
        values=values,
        metadata={"conversation_id": vector_id.split("#")[0], "tenant_id": "acme", "kind": kind},
    )


def test_upserting_the_same_id_twice_keeps_one_record_with_the_latest_values(
    engine: sa.Engine,
) -> None:
    index = SqlVectorIndex(engine)

    index.upsert(NS, [_record("c1#summary", [1.0, 0.0])])
    index.upsert(NS, [_record("c1#summary", [0.0, 1.0]), _record("c1#summary", [0.6, 0.8])])

    assert index.fetch(NS, ["c1#summary"]) == [_record("c1#summary", [0.6, 0.8])]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(VECTORS)).scalar_one() == 1


def test_fetch_returns_the_existing_records_only(engine: sa.Engine) -> None:
    index = SqlVectorIndex(engine)
    records = [
        _record("c1#summary", [1.0, 0.0]),
        _record("c1#transcript-0", [0.0, 1.0], "transcript"),
    ]
    index.upsert(NS, records)

    assert index.fetch(NS, ["c1#transcript-0", "missing", "c1#summary"]) == records
    assert index.fetch(NS, []) == []


def test_query_ranks_by_cosine_similarity_best_first(engine: sa.Engine) -> None:
    index = SqlVectorIndex(engine)
    index.upsert(
        NS,
        [
            _record("far#summary", [0.0, 3.0]),
            _record("near#summary", [2.0, 0.0]),
            _record("mid#summary", [0.8, 0.6]),
            _record("zero#summary", [0.0, 0.0]),
        ],
    )

    matches = index.query(NS, [1.0, 0.0], top_k=3)

    assert [m.id for m in matches] == ["near#summary", "mid#summary", "far#summary"]
    assert [m.score for m in matches] == pytest.approx([1.0, 0.8, 0.0])
    assert matches[0].metadata == {
        "conversation_id": "near",
        "tenant_id": "acme",
        "kind": "summary",
    }
    assert index.query(NS, [1.0, 0.0], top_k=0) == []


def test_query_filters_by_kind(engine: sa.Engine) -> None:
    index = SqlVectorIndex(engine)
    index.upsert(
        NS,
        [
            _record("c1#summary", [1.0, 0.0]),
            _record("c1#transcript-0", [1.0, 0.1], "transcript"),
            _record("c2#transcript-0", [0.0, 1.0], "transcript"),
        ],
    )

    transcripts = index.query(NS, [1.0, 0.0], top_k=10, kind="transcript")
    summaries = index.query(NS, [1.0, 0.0], top_k=10, kind="summary")

    assert [m.id for m in transcripts] == ["c1#transcript-0", "c2#transcript-0"]
    assert [m.id for m in summaries] == ["c1#summary"]


def test_namespaces_are_isolated(engine: sa.Engine) -> None:
    index = SqlVectorIndex(engine)
    index.upsert("tenant-a", [_record("c1#summary", [1.0, 0.0])])
    index.upsert("tenant-b", [_record("c1#summary", [0.0, 1.0])])

    assert index.fetch("tenant-a", ["c1#summary"]) == [_record("c1#summary", [1.0, 0.0])]
    assert [m.score for m in index.query("tenant-b", [0.0, 1.0], top_k=5)] == pytest.approx([1.0])
    assert index.query("tenant-c", [0.0, 1.0], top_k=5) == []


def test_a_query_of_another_dimension_is_a_permanent_error(engine: sa.Engine) -> None:
    index = SqlVectorIndex(engine)
    index.upsert(NS, [_record("c1#summary", [1.0, 0.0])])

    with pytest.raises(PermanentError, match="2 dimensions, the query has 3"):
        index.query(NS, [1.0, 0.0, 0.0], top_k=1)
