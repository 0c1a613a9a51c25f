"""The Embedder port's contract: the hashing embedder, OpenAI (real client) and the test fake."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from infra.settings import OpenAISettings
from infra.vendors.local_embedder import HashingEmbedder
from infra.vendors.openai_llm import OpenAIEmbedder, build_openai_client
from tests.fakes import FakeEmbedder
from tests.standins.openai_server import OpenAIStandIn

DIMENSIONS = 128

EmbedderUnderTest = HashingEmbedder | OpenAIEmbedder | FakeEmbedder

VENDORS: dict[type[EmbedderUnderTest], str | None] = {
    HashingEmbedder: None,
    OpenAIEmbedder: "openai",
    FakeEmbedder: None,
}
"""The vendor whose throttle each adapter holds (None: a local adapter, no throttle)."""


@pytest.fixture(params=["local", "openai", "fake"])
def embedder(request: pytest.FixtureRequest) -> Iterator[EmbedderUnderTest]:
    if request.param == "fake":
        yield FakeEmbedder(size=DIMENSIONS)
        return
    if request.param == "local":
        yield HashingEmbedder(DIMENSIONS)
        return
    standin: OpenAIStandIn = request.getfixturevalue("openai_standin")
    settings = OpenAISettings.model_validate(
        {"api_key": standin.api_key, "base_url": standin.base_url, "max_retries": 0}
    )
    client = build_openai_client(settings)
    try:
        yield OpenAIEmbedder(client, "text-embedding-3-small", DIMENSIONS)
    finally:
        client.close()


def _cosine(left: list[float], right: list[float]) -> float:
    return sum(x * y for x, y in zip(left, right, strict=True))


def test_every_vector_has_the_declared_dimension_and_unit_length(
    embedder: EmbedderUnderTest,
) -> None:
    vectors = embedder.embed(["the router keeps dropping", "billing question about my invoice"])

    assert embedder.dimensions == DIMENSIONS
    assert [len(vector) for vector in vectors] == [DIMENSIONS, DIMENSIONS]
    assert all(math.isclose(math.sqrt(_cosine(v, v)), 1.0, rel_tol=1e-6) for v in vectors)


def test_vectors_come_back_in_input_order_and_are_deterministic(
    embedder: EmbedderUnderTest,
) -> None:
    texts = ["first text about routers", "second text about invoices", "third about weather"]

    once = embedder.embed(texts)
    reversed_ = embedder.embed(list(reversed(texts)))

    assert once == list(reversed(reversed_))


def test_related_texts_are_closer_than_unrelated_ones(embedder: EmbedderUnderTest) -> None:
    anchor, related, unrelated = embedder.embed(
        [
            "my internet router keeps dropping the connection",
            "the router drops the internet connection every evening",
            "please update the billing address on my invoice",
        ]
    )

    assert _cosine(anchor, related) > _cosine(anchor, unrelated)


def test_no_texts_give_no_vectors(embedder: EmbedderUnderTest) -> None:
    assert embedder.embed([]) == []


def test_the_adapter_names_the_vendor_whose_throttle_it_holds(embedder: EmbedderUnderTest) -> None:
    assert embedder.vendor == VENDORS[type(embedder)]
