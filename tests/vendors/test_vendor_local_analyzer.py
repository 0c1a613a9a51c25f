"""The local analyzer's summary, topics and sentiment, and the hashing embedder."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from contracts import TranscriptTurn
from infra.vendors.local_analyzer import LocalAnalyzer, sentiment, summarize, topics
from infra.vendors.local_embedder import HashingEmbedder

REFERENCE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def user(message: str) -> TranscriptTurn:
    return TranscriptTurn(role="user", message=message)


def agent(message: str) -> TranscriptTurn:
    return TranscriptTurn(role="agent", message=message)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("The technician was great and really helpful.", "positive"),
        ("This is terrible, the router is broken again.", "negative"),
        ("I'd like to change my address.", "neutral"),
        ("I'm not happy with the service.", "negative"),
        ("It's not bad at all.", "positive"),
    ],
)
def test_sentiment_follows_the_callers_words(message: str, expected: str) -> None:
    assert sentiment([agent("Great to hear from you!"), user(message)]) == expected


def test_the_agents_words_do_not_make_an_unhappy_caller_positive() -> None:
    turns = [agent("Wonderful, great, excellent, perfect!"), user("The outage is terrible.")]

    assert sentiment(turns) == "negative"


def test_topics_are_frequent_content_words_lowercase_at_most_five() -> None:
    turns = [
        user("My Router is dropping. The router lights blink and the router restarts."),
        agent("Let me check the router firmware and your modem."),
        user("The modem is new. Billing also charged me twice for the modem."),
    ]

    found = topics(turns)

    assert found[:2] == ["router", "modem"]
    assert len(found) <= 5
    assert all(t == t.lower() and t not in {"the", "and", "me"} for t in found)


def test_the_summary_keeps_the_most_informative_sentences_in_call_order() -> None:
    turns = [
        agent("Hello."),
        user("My router keeps dropping the internet connection."),
        agent("Okay."),
        user("The router dropped the internet connection three times today."),
        agent("Thanks."),
        user("Bye."),
    ]

    summary = summarize(turns)

    assert summary == (
        "My router keeps dropping the internet connection. "
        "The router dropped the internet connection three times today."
    )
    assert "Okay." not in summary


def test_an_empty_call_still_gets_an_analysis() -> None:
    analysis = LocalAnalyzer().analyze([], reference_time=REFERENCE, timezone="UTC")

    assert analysis.summary == "No conversation was recorded."
    assert analysis.topics == []
    assert analysis.sentiment == "neutral"
    assert analysis.callback is None
    assert analysis.analyzer == "local"


def test_the_same_call_always_gives_the_same_analysis() -> None:
    turns = [user("Please call me back tomorrow about the broken router."), agent("Sure.")]
    analyzer = LocalAnalyzer()

    first = analyzer.analyze(turns, reference_time=REFERENCE, timezone="Europe/Berlin")
    second = analyzer.analyze(turns, reference_time=REFERENCE, timezone="Europe/Berlin")

    assert first == second
    assert first.callback is not None


def test_hashing_embeddings_are_identical_in_another_process() -> None:
    text = "router keeps dropping the connection"
    script = (
        "import json; from infra.vendors.local_embedder import HashingEmbedder; "
        f"print(json.dumps(HashingEmbedder(32).embed([{text!r}])[0]))"
    )
    # A fresh interpreter has a different hash() salt: only a stable hash matches.
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )

    assert json.loads(out.stdout) == HashingEmbedder(32).embed([text])[0]


def test_hashing_embeddings_are_unit_length_and_zero_for_empty_text() -> None:
    vector, empty = HashingEmbedder(64).embed(["billing question", "  "])

    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0)
    assert empty == [0.0] * 64


def test_a_call_of_only_small_talk_summarises_to_its_first_sentence() -> None:
    assert summarize([agent("Hello."), user("Okay."), agent("Bye.")]) == "Hello."
