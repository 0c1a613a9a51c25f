"""The local embedder: feature hashing of word unigrams and bigrams.

Each feature is hashed with BLAKE2b (never Python's ``hash()``, which is salted per
process) into a bucket and a sign; the vector is L2-normalised, so cosine similarity
is a dot product and texts sharing words and word pairs score higher. Deterministic
across processes, machines and runs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from itertools import pairwise

from infra.vendors.lexicon import tokenize

BIGRAM_WEIGHT = 0.5
"""Word pairs count for less than words: they refine rather than define similarity."""


class HashingEmbedder:
    """Signed feature hashing of unigrams and bigrams into ``dimensions`` buckets."""

    vendor: str | None = None
    """A local adapter: no vendor, no throttle."""

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions < 2:
            raise ValueError("dimensions must be at least 2")
        self._dimensions = dimensions

    @property
    def dimensions(self) -> int:
        """Length of every vector returned."""
        return self._dimensions

    @property
    def name(self) -> str:
        """A label for logs and health checks, e.g. ``local-hashing-256``."""
        return f"local-hashing-{self._dimensions}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts, one unit-length vector per text (all zeros for a text without words)."""
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self._dimensions
        tokens = tokenize(text)
        features = [(token, 1.0) for token in tokens] + [
            (f"{left} {right}", BIGRAM_WEIGHT) for left, right in pairwise(tokens)
        ]
        for feature, weight in features:
            bucket, sign = self._hash(feature)
            vector[bucket] += sign * weight
        norm = math.sqrt(sum(value * value for value in vector))
        if norm == 0.0:
            return vector
        return [value / norm for value in vector]

    def _hash(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        # The lowest bit picks the sign, the rest the bucket: collisions then cancel on
        # average instead of piling up.
        return (number >> 1) % self._dimensions, 1.0 if number & 1 else -1.0
