"""The local analyzer: a real, deterministic call analysis without an LLM.

- summary: the 2-3 highest-scoring sentences (by the frequency of their content words
  across the call, caller sentences weighted up), in the order they were said;
- topics: up to 5 content words, most frequent first (caller words count double);
- sentiment: a lexicon score over the caller's words, with simple negation;
- callback: rule-based detection on caller turns (see ``infra.vendors.callback_times``).

The same transcript, reference time and zone always give the same analysis.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from contracts import CallAnalysis, Sentiment, TranscriptTurn
from infra.vendors.callback_times import detect_callback, zone_of
from infra.vendors.lexicon import (
    NEGATIVE,
    NEGATORS,
    POSITIVE,
    content_words,
    split_sentences,
    tokenize,
)

CALLER_WEIGHT = 2
"""How much more a caller's word counts than the agent's (the call is about the caller)."""

MAX_TOPICS = 5
EMPTY_SUMMARY = "No conversation was recorded."


class LocalAnalyzer:
    """Extractive summary, keyword topics, lexicon sentiment and rule-based callbacks."""

    vendor: str | None = None
    """A local adapter: no vendor, no throttle."""

    @property
    def name(self) -> str:
        """The label stored with each analysis."""
        return "local"

    def analyze(
        self, transcript: Sequence[TranscriptTurn], *, reference_time: datetime, timezone: str
    ) -> CallAnalysis:
        """Analyze a transcript deterministically.

        Raises:
            PermanentError: ``timezone`` is not an IANA zone.
        """
        zone_of(timezone)
        turns = [turn for turn in transcript if turn.message.strip()]
        return CallAnalysis(
            summary=summarize(turns),
            topics=topics(turns),
            sentiment=sentiment(turns),
            callback=detect_callback(turns, reference_time=reference_time, timezone=timezone),
            analyzer=self.name,
        )


def _frequencies(turns: Sequence[TranscriptTurn]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for turn in turns:
        weight = CALLER_WEIGHT if turn.role == "user" else 1
        for word in content_words(turn.message):
            counts[word] += weight
    return counts


def summarize(turns: Sequence[TranscriptTurn]) -> str:
    """The 2-3 sentences that carry the most of the call's vocabulary, in call order."""
    sentences = [
        (turn.role, sentence) for turn in turns for sentence in split_sentences(turn.message)
    ]
    if not sentences:
        return EMPTY_SUMMARY
    counts = _frequencies(turns)
    keep = 3 if len(sentences) >= 6 else 2

    def score(item: tuple[int, tuple[str, str]]) -> tuple[float, int]:
        position, (role, sentence) = item
        words = content_words(sentence)
        if not words:
            return (0.0, -position)
        weight = CALLER_WEIGHT if role == "user" else 1
        # sqrt length: long sentences score higher, but not in proportion to their length.
        value = weight * sum(counts[word] for word in words) / math.sqrt(len(words))
        return (value, -position)

    ranked = sorted(enumerate(sentences), key=score, reverse=True)
    # Small talk ("Hello.", "Okay.") carries no content word: never pad the summary with it.
    best = [item for item in ranked[:keep] if score(item)[0] > 0] or ranked[:1]
    return " ".join(sentence for _, (_, sentence) in sorted(best))


def topics(turns: Sequence[TranscriptTurn]) -> list[str]:
    """Up to five lowercase content words, most frequent first (ties: first said first)."""
    counts = _frequencies(turns)
    first_seen: dict[str, int] = {}
    for turn in turns:
        for word in content_words(turn.message):
            first_seen.setdefault(word, len(first_seen))
    ranked = sorted(counts, key=lambda word: (-counts[word], first_seen[word]))
    return ranked[:MAX_TOPICS]


def sentiment(turns: Sequence[TranscriptTurn]) -> Sentiment:
    """The caller's sentiment from a word lexicon; a negator flips the next two words."""
    caller = [turn for turn in turns if turn.role == "user"] or list(turns)
    score = 0
    for turn in caller:
        tokens = tokenize(turn.message)
        for index, token in enumerate(tokens):
            polarity = (token in POSITIVE) - (token in NEGATIVE)
            if polarity and any(word in NEGATORS for word in tokens[max(0, index - 2) : index]):
                polarity = -polarity
            score += polarity
    if score > 0:
        return "positive"
    if score < 0:
        return "negative"
    return "neutral"
