"""The Analyzer port's contract: the local analyzer and OpenAI (through its real client)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from contracts import TranscriptTurn
from infra.settings import OpenAISettings
from infra.vendors.local_analyzer import LocalAnalyzer
from infra.vendors.openai_llm import OpenAIAnalyzer, build_openai_client
from tests.standins.openai_server import OpenAIStandIn

# Saturday 7 March 2026, 15:00 in New York (EST); DST starts the next night.
REFERENCE = datetime(2026, 3, 7, 20, 0, tzinfo=UTC)
ZONE = "America/New_York"

AnalyzerUnderTest = LocalAnalyzer | OpenAIAnalyzer
# ``tests.fakes.FixedAnalyzer`` is not run here: it returns a canned analysis whatever the
# transcript, so it claims none of the behaviours below.

VENDORS: dict[type[AnalyzerUnderTest], str | None] = {LocalAnalyzer: None, OpenAIAnalyzer: "openai"}
"""The vendor whose throttle each adapter holds (None: a local adapter, no throttle)."""


@pytest.fixture(params=["local", "openai"])
def analyzer(request: pytest.FixtureRequest) -> Iterator[AnalyzerUnderTest]:
    if request.param == "local":
        yield LocalAnalyzer()
        return
    standin: OpenAIStandIn = request.getfixturevalue("openai_standin")
    settings = OpenAISettings.model_validate(
        {"api_key": standin.api_key, "base_url": standin.base_url, "max_retries": 0}
    )
    client = build_openai_client(settings)
    try:
        yield OpenAIAnalyzer(client, "gpt-4o-mini")
    finally:
        client.close()


def turns(*pairs: tuple[str, str]) -> list[TranscriptTurn]:
    return [TranscriptTurn.model_validate({"role": r, "message": m}) for r, m in pairs]


COMPLAINT = turns(
    ("agent", "Thanks for calling Acme Broadband, how can I help?"),
    ("user", "My internet keeps dropping and the router is terrible. This is unacceptable."),
    ("agent", "I'm sorry about the router trouble. I can send a technician."),
    ("user", "I'm busy now. Can you call me back tomorrow at 5 pm about the technician?"),
    ("agent", "Of course, we will call you back tomorrow at 5 pm."),
)


def test_a_callback_request_is_detected_with_its_local_time_across_the_dst_change(
    analyzer: AnalyzerUnderTest,
) -> None:
    analysis = analyzer.analyze(COMPLAINT, reference_time=REFERENCE, timezone=ZONE)

    assert analysis.callback is not None
    # 17:00 EDT on Sunday 8 March is 21:00 UTC (it would be 22:00 UTC before the change).
    assert analysis.callback.due_at == datetime(2026, 3, 8, 21, 0, tzinfo=UTC)
    assert "call me back" in analysis.callback.reason.lower()


def test_a_caller_who_declines_a_callback_gets_none(analyzer: AnalyzerUnderTest) -> None:
    transcript = turns(
        ("agent", "Would you like us to call you back later?"),
        ("user", "No, please don't call me back. The billing question is solved, thanks."),
    )

    analysis = analyzer.analyze(transcript, reference_time=REFERENCE, timezone=ZONE)

    assert analysis.callback is None


def test_the_analysis_has_a_summary_topics_and_the_callers_sentiment(
    analyzer: AnalyzerUnderTest,
) -> None:
    analysis = analyzer.analyze(COMPLAINT, reference_time=REFERENCE, timezone=ZONE)

    assert analysis.summary.strip()
    assert 1 <= len(analysis.topics) <= 5
    assert all(topic == topic.lower() for topic in analysis.topics)
    assert "router" in analysis.topics
    assert analysis.sentiment == "negative"
    assert analysis.analyzer == analyzer.name


def test_a_happy_caller_is_positive(analyzer: AnalyzerUnderTest) -> None:
    transcript = turns(
        ("agent", "Is the new plan working for you?"),
        ("user", "Yes, it works great and the installer was really helpful. I love it."),
    )

    analysis = analyzer.analyze(transcript, reference_time=REFERENCE, timezone=ZONE)

    assert analysis.sentiment == "positive"
    assert analysis.callback is None


def test_the_adapter_names_the_vendor_whose_throttle_it_holds(analyzer: AnalyzerUnderTest) -> None:
    assert analyzer.vendor == VENDORS[type(analyzer)]
