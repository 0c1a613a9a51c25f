from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from actors.steps import index_call
from contracts import CallIndexed, TranscriptTurn
from contracts.errors import PermanentError
from contracts.values import summary_vector_id, tenant_namespace, transcript_vector_id
from tests.builders import (
    AGENT_ID,
    CONVERSATION_ID,
    TENANT_ID,
    make_analysis,
    make_analyzed,
    make_transcript,
)
from tests.fakes import FakeEmbedder, InMemoryVectorIndex

NAMESPACE = tenant_namespace(TENANT_ID)


def _turns(count: int, *, words: int) -> list[TranscriptTurn]:
    return [
        TranscriptTurn(
            role="agent" if i % 2 == 0 else "user",
            message=" ".join(f"t{i}w{j}" for j in range(words)),
        )
        for i in range(count)
    ]


def _run(event_transcript: list[TranscriptTurn]) -> tuple[CallIndexed, InMemoryVectorIndex]:
    index = InMemoryVectorIndex()
    [result] = index_call.run(
        make_analyzed(transcript=event_transcript), embedder=FakeEmbedder(), index=index
    )
    assert isinstance(result, CallIndexed)
    return result, index


def _chunk_texts(index: InMemoryVectorIndex) -> list[str]:
    records = index.namespaces[NAMESPACE]
    transcript = [r for r in records.values() if r.metadata["kind"] == "transcript"]
    return [r.metadata["text"] for r in sorted(transcript, key=lambda r: r.metadata["chunk"])]


def test_summary_and_transcript_get_deterministic_ids_in_the_tenant_namespace() -> None:
    embedder = FakeEmbedder()
    index = InMemoryVectorIndex()
    event = make_analyzed()

    [result] = index_call.run(event, embedder=embedder, index=index)

    assert isinstance(result, CallIndexed)
    expected = [summary_vector_id(CONVERSATION_ID), transcript_vector_id(CONVERSATION_ID, 0)]
    assert result.vector_ids == expected
    assert list(index.namespaces) == [NAMESPACE]
    assert sorted(index.namespaces[NAMESPACE]) == sorted(expected)
    assert (result.job_id, result.tenant_id, result.conversation_id, result.agent_id) == (
        event.job_id,
        event.tenant_id,
        event.conversation_id,
        event.agent_id,
    )
    assert result.analysis == event.analysis
    assert (result.started_at, result.duration_secs, result.call_status) == (
        event.started_at,
        event.duration_secs,
        event.call_status,
    )


def test_all_texts_are_embedded_in_one_call_and_upserted_in_one_call() -> None:
    embedder = FakeEmbedder()
    index = InMemoryVectorIndex()

    index_call.run(make_analyzed(transcript=_turns(12, words=40)), embedder=embedder, index=index)

    assert len(embedder.batches) == 1
    assert index.upserts == 1
    assert len(embedder.batches[0]) == len(index.namespaces[NAMESPACE]) > 2
    stored = index.namespaces[NAMESPACE][summary_vector_id(CONVERSATION_ID)]
    assert stored.values == embedder.embed([make_analysis().summary])[0]


def test_summary_metadata_names_the_call_its_topics_and_sentiment() -> None:
    _, index = _run(make_transcript())

    summary = index.namespaces[NAMESPACE][summary_vector_id(CONVERSATION_ID)]
    assert summary.metadata == {
        "conversation_id": CONVERSATION_ID,
        "tenant_id": TENANT_ID,
        "agent_id": AGENT_ID,
        "kind": "summary",
        "topics": ["billing", "meter reading"],
        "sentiment": "negative",
        "text": make_analysis().summary,
    }


def test_transcript_metadata_carries_the_chunk_number_and_role_lines() -> None:
    _, index = _run(make_transcript())

    chunk = index.namespaces[NAMESPACE][transcript_vector_id(CONVERSATION_ID, 0)]
    expected_text = "\n".join(f"{t.role}: {t.message}" for t in make_transcript())
    assert chunk.metadata == {
        "conversation_id": CONVERSATION_ID,
        "tenant_id": TENANT_ID,
        "agent_id": AGENT_ID,
        "kind": "transcript",
        "chunk": 0,
        "topics": ["billing", "meter reading"],
        "sentiment": "negative",
        "text": expected_text,
    }


def test_a_long_transcript_is_chunked_near_the_limit_without_splitting_turns() -> None:
    turns = _turns(30, words=30)  # about 200 characters a turn
    lines = [f"{t.role}: {t.message}" for t in turns]

    result, index = _run(turns)

    chunks = _chunk_texts(index)
    assert len(chunks) > 5
    assert all(len(chunk) <= index_call.CHUNK_CHARS for chunk in chunks)
    # Every chunk but the last is full enough that the next turn would not have fitted.
    for chunk, following in itertools.pairwise(chunks):
        next_line = following.split("\n")[0]
        assert len(chunk) + 1 + len(next_line) > index_call.CHUNK_CHARS
    assert [line for chunk in chunks for line in chunk.split("\n")] == lines
    assert result.vector_ids[1:] == [
        transcript_vector_id(CONVERSATION_ID, i) for i in range(len(chunks))
    ]


def test_a_turn_longer_than_a_chunk_is_split_at_whitespace_into_chunk_sized_pieces() -> None:
    long_turn = TranscriptTurn(role="user", message=" ".join(f"word{i:04d}" for i in range(300)))
    short_turn = TranscriptTurn(role="agent", message="Thanks, noted.")

    _, index = _run([short_turn, long_turn, short_turn])

    chunks = _chunk_texts(index)
    assert len(chunks) >= 4
    assert all(len(chunk) <= index_call.CHUNK_CHARS for chunk in chunks)
    assert chunks[0] == "agent: Thanks, noted."
    assert chunks[1].startswith("user: word0000 word0001")
    assert chunks[-1].endswith("agent: Thanks, noted.")
    words = " ".join(chunk.replace("\n", " ") for chunk in chunks).split()
    assert words == ["agent:", "Thanks,", "noted.", "user:"] + [
        f"word{i:04d}" for i in range(300)
    ] + ["agent:", "Thanks,", "noted."]


def test_a_turn_without_whitespace_is_cut_hard_at_the_chunk_size() -> None:
    _, index = _run([TranscriptTurn(role="user", message="x" * 2500)])

    chunks = _chunk_texts(index)
    assert [len(chunk) for chunk in chunks] == [1000, 1000, 506]
    assert "".join(chunks) == "user: " + "x" * 2500


def test_blank_turns_are_left_out_of_the_chunks() -> None:
    turns = [
        TranscriptTurn(role="agent", message="Hello?"),
        TranscriptTurn(role="user", message="   "),
        TranscriptTurn(role="agent", message="Goodbye."),
    ]

    _, index = _run(turns)

    assert _chunk_texts(index) == ["agent: Hello?\nagent: Goodbye."]


def test_a_blank_summary_gets_no_summary_vector() -> None:
    index = InMemoryVectorIndex()

    [result] = index_call.run(
        make_analyzed(analysis=make_analysis(summary="  ")), embedder=FakeEmbedder(), index=index
    )

    assert isinstance(result, CallIndexed)
    assert result.vector_ids == [transcript_vector_id(CONVERSATION_ID, 0)]
    assert list(index.namespaces[NAMESPACE]) == result.vector_ids


def test_a_rerun_keeps_the_same_records_and_skips_embedding() -> None:
    embedder = FakeEmbedder()
    index = InMemoryVectorIndex()
    event = make_analyzed(transcript=_turns(12, words=40))

    [first] = index_call.run(event, embedder=embedder, index=index)
    before = dict(index.namespaces[NAMESPACE])
    [second] = index_call.run(event, embedder=embedder, index=index)

    assert second == first
    assert index.namespaces[NAMESPACE] == before
    assert len(embedder.batches) == 1
    assert index.upserts == 1


def test_a_rerun_after_a_partial_upsert_embeds_and_upserts_every_record() -> None:
    embedder = FakeEmbedder()
    index = InMemoryVectorIndex()
    event = make_analyzed(transcript=_turns(12, words=40))
    [first] = index_call.run(event, embedder=embedder, index=index)
    assert isinstance(first, CallIndexed)
    del index.namespaces[NAMESPACE][first.vector_ids[-1]]

    index_call.run(event, embedder=embedder, index=index)

    assert sorted(index.namespaces[NAMESPACE]) == sorted(first.vector_ids)
    assert len(embedder.batches) == 2
    assert len(embedder.batches[1]) == len(first.vector_ids)


def test_calls_of_different_tenants_go_to_different_namespaces() -> None:
    index = InMemoryVectorIndex()
    embedder = FakeEmbedder()

    index_call.run(make_analyzed(), embedder=embedder, index=index)
    index_call.run(
        make_analyzed(tenant_id="tenant-other", conversation_id="conv_9"),
        embedder=embedder,
        index=index,
    )

    assert sorted(index.namespaces) == sorted([NAMESPACE, tenant_namespace("tenant-other")])
    assert list(index.namespaces[tenant_namespace("tenant-other")]) == [
        summary_vector_id("conv_9"),
        transcript_vector_id("conv_9", 0),
    ]


def test_an_indexed_summary_is_the_best_summary_match_for_its_own_text() -> None:
    embedder = FakeEmbedder()
    index = InMemoryVectorIndex()
    index_call.run(make_analyzed(), embedder=embedder, index=index)
    index_call.run(
        make_analyzed(
            conversation_id="conv_2",
            analysis=make_analysis(summary="A customer asked to move house next month."),
        ),
        embedder=embedder,
        index=index,
    )

    [query] = embedder.embed([make_analysis().summary])
    matches = index.query(NAMESPACE, query, top_k=5, kind="summary")

    assert [m.id for m in matches] == [
        summary_vector_id(CONVERSATION_ID),
        summary_vector_id("conv_2"),
    ]
    assert matches[0].score == pytest.approx(1.0)
    assert all(m.metadata["kind"] == "summary" for m in matches)


class _ShortEmbedder(FakeEmbedder):
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return super().embed(texts)[:-1]


def test_an_embedder_returning_too_few_vectors_is_a_permanent_error_and_nothing_is_upserted() -> (
    None
):
    index = InMemoryVectorIndex()

    with pytest.raises(PermanentError, match="1 vectors for 2 texts"):
        index_call.run(make_analyzed(), embedder=_ShortEmbedder(), index=index)

    assert index.namespaces == {}
