"""The VectorIndex port's contract: SQL, Pinecone (stand-in), Qdrant and the unit tests' fake."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from qdrant_client import QdrantClient

from contracts.values import VectorRecord
from infra.settings import PineconeSettings
from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.vectors import SqlVectorIndex
from infra.vendors.pinecone_index import PineconeVectorIndex
from infra.vendors.qdrant_index import QdrantVectorIndex
from tests.fakes import InMemoryVectorIndex
from tests.standins.fixtures import PINECONE_STANDIN_DIMENSION
from tests.standins.pinecone_server import PineconeStandIn

DIM = PINECONE_STANDIN_DIMENSION

IndexUnderTest = SqlVectorIndex | PineconeVectorIndex | QdrantVectorIndex | InMemoryVectorIndex

VENDORS: dict[type[IndexUnderTest], str | None] = {
    SqlVectorIndex: None,
    PineconeVectorIndex: "pinecone",
    QdrantVectorIndex: "qdrant",
    InMemoryVectorIndex: None,
}
"""The vendor whose throttle each adapter holds (None: a local adapter, no throttle)."""


@pytest.fixture(params=["sql", "pinecone", "qdrant", "fake"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexUnderTest]:
    if request.param == "fake":
        yield InMemoryVectorIndex()
    elif request.param == "sql":
        url = f"sqlite:///{tmp_path / 'vectors.db'}"
        upgrade(url)
        engine = create_engine(url)
        try:
            yield SqlVectorIndex(engine)
        finally:
            engine.dispose()
    elif request.param == "pinecone":
        standin: PineconeStandIn = request.getfixturevalue("pinecone_standin")
        settings = PineconeSettings(
            api_key=SecretStr(standin.api_key), index_name="calls", timeout_s=5
        )
        pinecone = PineconeVectorIndex.from_settings(settings, host=standin.url)
        try:
            yield pinecone
        finally:
            pinecone.close()
    else:
        qdrant = QdrantVectorIndex(QdrantClient(location=":memory:"), "calls", DIM)
        try:
            yield qdrant
        finally:
            qdrant.close()


def unit(*hot: int) -> list[float]:
    """A unit vector with equal weight on the ``hot`` axes."""
    values = [0.0] * DIM
    for axis in hot:
        values[axis] = 1.0
    norm = math.sqrt(len(hot))
    return [value / norm for value in values]


def record(vector_id: str, values: list[float], kind: str = "summary") -> VectorRecord:
    return VectorRecord(
        id=vector_id,
        values=values,
        metadata={"conversation_id": vector_id.split("#")[0], "tenant_id": "t1", "kind": kind},
    )


def test_upserted_records_are_fetched_by_id_with_values_and_metadata(
    index: IndexUnderTest,
) -> None:
    index.upsert("tenant-t1", [record("c1#summary", unit(0)), record("c2#summary", unit(1))])

    fetched = {r.id: r for r in index.fetch("tenant-t1", ["c1#summary", "c2#summary", "nope"])}

    assert set(fetched) == {"c1#summary", "c2#summary"}
    assert fetched["c1#summary"].values == pytest.approx(unit(0))
    assert fetched["c1#summary"].metadata == {
        "conversation_id": "c1",
        "tenant_id": "t1",
        "kind": "summary",
    }


def test_upserting_the_same_id_again_replaces_the_record(index: IndexUnderTest) -> None:
    index.upsert("tenant-t1", [record("c1#summary", unit(0))])
    index.upsert("tenant-t1", [record("c1#summary", unit(5))])

    (fetched,) = index.fetch("tenant-t1", ["c1#summary"])
    matches = index.query("tenant-t1", unit(5), top_k=10)

    assert fetched.values == pytest.approx(unit(5))
    assert [m.id for m in matches] == ["c1#summary"]


def test_namespaces_never_see_each_others_records(index: IndexUnderTest) -> None:
    index.upsert("tenant-t1", [record("c1#summary", unit(0))])
    index.upsert("tenant-t2", [record("c9#summary", unit(0))])

    assert [m.id for m in index.query("tenant-t1", unit(0), top_k=10)] == ["c1#summary"]
    assert index.fetch("tenant-t2", ["c1#summary"]) == []
    assert index.query("tenant-empty", unit(0), top_k=10) == []


def test_query_ranks_by_cosine_best_first_and_honours_top_k(index: IndexUnderTest) -> None:
    index.upsert(
        "tenant-t1",
        [
            record("far#summary", unit(10)),
            record("near#summary", unit(0, 1)),
            record("exact#summary", unit(0)),
        ],
    )

    matches = index.query("tenant-t1", unit(0), top_k=2)

    assert [m.id for m in matches] == ["exact#summary", "near#summary"]
    assert matches[0].score == pytest.approx(1.0, abs=1e-5)
    assert matches[1].score == pytest.approx(1 / math.sqrt(2), abs=1e-5)
    assert matches[0].metadata["kind"] == "summary"


def test_query_filters_by_kind(index: IndexUnderTest) -> None:
    index.upsert(
        "tenant-t1",
        [
            record("c1#summary", unit(0)),
            record("c1#transcript-0", unit(0), kind="transcript"),
            record("c1#transcript-1", unit(0, 2), kind="transcript"),
        ],
    )

    transcripts = index.query("tenant-t1", unit(0), top_k=10, kind="transcript")
    summaries = index.query("tenant-t1", unit(0), top_k=10, kind="summary")

    assert [m.id for m in transcripts] == ["c1#transcript-0", "c1#transcript-1"]
    assert [m.id for m in summaries] == ["c1#summary"]


def test_the_adapter_names_the_vendor_whose_throttle_it_holds(index: IndexUnderTest) -> None:
    assert index.vendor == VENDORS[type(index)]


def test_deleted_records_are_gone_and_the_rest_stay(index: IndexUnderTest) -> None:
    index.upsert(
        "tenant-t1",
        [
            record("c1#summary", unit(0)),
            record("c1#transcript-0", unit(1), kind="transcript"),
            record("c2#summary", unit(2)),
        ],
    )

    index.delete("tenant-t1", ["c1#summary", "c1#transcript-0"])

    assert [r.id for r in index.fetch("tenant-t1", ["c1#summary", "c1#transcript-0"])] == []
    assert [m.id for m in index.query("tenant-t1", unit(0), top_k=10)] == ["c2#summary"]


def test_deleting_again_or_ids_never_stored_is_harmless(index: IndexUnderTest) -> None:
    index.upsert("tenant-t1", [record("c1#summary", unit(0))])

    index.delete("tenant-t1", ["c1#summary", "never#summary"])
    index.delete("tenant-t1", ["c1#summary"])
    index.delete("tenant-empty", ["c1#summary"])
    index.delete("tenant-t1", [])

    assert index.fetch("tenant-t1", ["c1#summary"]) == []


def test_delete_touches_only_its_namespace(index: IndexUnderTest) -> None:
    index.upsert("tenant-t1", [record("c1#summary", unit(0))])
    index.upsert("tenant-t2", [record("c1#summary", unit(0))])

    index.delete("tenant-t1", ["c1#summary"])

    assert [r.id for r in index.fetch("tenant-t2", ["c1#summary"])] == ["c1#summary"]


def test_a_delete_of_more_ids_than_one_request_takes_deletes_them_all(
    index: IndexUnderTest,
) -> None:
    ids = [f"c{n}#summary" for n in range(1201)]
    index.upsert("tenant-t1", [record(vector_id, unit(n % DIM)) for n, vector_id in enumerate(ids)])

    index.delete("tenant-t1", ids)

    assert index.fetch("tenant-t1", ids[:100]) == []
    assert index.fetch("tenant-t1", ids[-100:]) == []
