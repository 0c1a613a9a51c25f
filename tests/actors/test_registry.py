from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from pydantic import ValidationError

from actors.pipeline import BoundStep
from actors.pipelines import callbacks, daily_calls, health_check, post_call
from actors.registry import Bus, message_refs, register_steps, resolve_options
from actors.shell import StepShell
from contracts import CONTRACTS
from contracts.errors import PermanentError
from infra.bus.publishing import InMemoryPublisher
from infra.bus.throttle import Throttle, Throttles
from infra.settings import ActorOverride, Settings, StepSettings
from tests.builders import make_analysis
from tests.fakes import (
    FakeEmbedder,
    FakeTelephony,
    FakeTranscriptSource,
    FixedAnalyzer,
    FixedClock,
    FixedDialPlan,
    InMemoryCallBook,
    InMemoryCallStore,
    InMemoryCheckpoints,
    InMemoryVectorIndex,
    RecordingDeferral,
    RecordingProgress,
)


def bound_steps(*, vendors: bool = False) -> list[BoundStep]:
    """Both workflows on fakes; with ``vendors`` the fakes say they are OpenAI and Pinecone."""
    store = InMemoryCallStore()
    analyzer = FixedAnalyzer(make_analysis(), vendor="openai" if vendors else None)
    embedder = replace(FakeEmbedder(), vendor="openai" if vendors else None)
    index = replace(InMemoryVectorIndex(), vendor="pinecone" if vendors else None)
    outbound = daily_calls.OutboundCallPorts(
        plan=FixedDialPlan(),
        book=InMemoryCallBook(),
        telephony=FakeTelephony(vendor="callkaro" if vendors else None),
    )
    return [
        *post_call.PIPELINE.bind(
            post_call.PostCallPorts(
                transcripts=FakeTranscriptSource(),
                analyzer=analyzer,
                embedder=embedder,
                vectors=index,
                calls=store,
                callbacks=store,
                now=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
            )
        ),
        *health_check.PIPELINE.bind(
            health_check.HealthCheckPorts(checkpoints=InMemoryCheckpoints(), health=store)
        ),
        *daily_calls.PIPELINE.bind(outbound),
        *callbacks.PIPELINE.bind(outbound),
    ]


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    yield broker
    broker.close()


def _bus(steps: list[BoundStep], throttles: dict[str, Throttle] | None = None) -> Bus:
    return Bus(
        publisher=InMemoryPublisher(),
        progress=RecordingProgress(),
        refs=message_refs(steps),
        throttles=throttles or {},
        deferral=RecordingDeferral(),
    )


def test_every_route_has_a_registered_actor_and_every_actor_a_route(broker: StubBroker) -> None:
    steps = bound_steps()
    options = resolve_options(steps, StepSettings(), {})
    actors = register_steps(broker, steps, bus=_bus(steps), options=options)

    routes = {(c.route.actor, c.route.queue) for c in CONTRACTS}
    registered = {(name, actor.queue_name) for name, actor in actors.items()}
    assert registered == routes
    assert set(broker.get_declared_actors()) == {actor for actor, _ in routes}


def test_step_positions_follow_each_pipeline_declaration() -> None:
    positions = {step.name: (step.pipeline, step.position) for step in bound_steps()}

    assert positions == {
        "fetch_transcript": ("post_call", 0),
        "analyze_call": ("post_call", 1),
        "index_call": ("post_call", 2),
        "persist_call": ("post_call", 3),
        "schedule_callback": ("post_call", 4),
        "record_health_check": ("health_check", 0),
        "select_due_calls": ("daily_calls", 0),
        "place_user_call": ("daily_calls", 1),
        "select_due_callbacks": ("callbacks", 0),
        "place_callback_call": ("callbacks", 1),
    }


def test_actor_options_are_settings_defaults_then_declared_then_overridden(
    broker: StubBroker,
) -> None:
    steps = bound_steps()
    defaults = StepSettings(max_retries=2, min_backoff_ms=5, max_backoff_ms=50)
    overrides = {"analyze_call": ActorOverride(max_retries=6, time_limit_ms=9_000)}
    actors = register_steps(
        broker, steps, bus=_bus(steps), options=resolve_options(steps, defaults, overrides)
    )

    assert actors["fetch_transcript"].options["max_retries"] == post_call.TRANSCRIPT_POLLS
    assert actors["analyze_call"].options["max_retries"] == 6
    assert actors["analyze_call"].options["time_limit"] == 9_000
    assert actors["index_call"].options["max_retries"] == 2
    for actor in actors.values():
        assert actor.options["min_backoff"] == 5
        assert actor.options["max_backoff"] == 50
        assert actor.options["throws"] == (PermanentError, ValidationError)


def test_overrides_are_read_from_the_environment_by_actor_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ACTORS__INDEX_CALL__MAX_RETRIES", "9")
    monkeypatch.setenv("SWITCHBOARD_ACTORS__INDEX_CALL__MIN_BACKOFF_MS", "250")

    settings = Settings()
    options = resolve_options(bound_steps(), settings.steps, settings.actors)

    assert (options["index_call"].max_retries, options["index_call"].min_backoff_ms) == (9, 250)


def test_an_override_for_an_unknown_actor_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown actors \['analyse_call'\].*analyze_call"):
        resolve_options(bound_steps(), StepSettings(), {"analyse_call": ActorOverride()})


def test_local_adapters_name_no_vendor_so_no_step_is_throttled(broker: StubBroker) -> None:
    steps = bound_steps()
    actors = register_steps(
        broker, steps, bus=_bus(steps), options=resolve_options(steps, StepSettings(), {})
    )

    assert all(step.vendors == () for step in steps)
    assert all(
        isinstance(actor.fn, StepShell) and actor.fn.throttle is None for actor in actors.values()
    )


def test_steps_share_the_throttle_of_the_vendor_they_call(broker: StubBroker) -> None:
    steps = bound_steps(vendors=True)
    client = redis.Redis()  # never connects: the throttles are only wired here
    throttles = {
        vendor: Throttle(client, f"t:{vendor}", concurrency=1, rate_per_s=1, wait_timeout_s=0)
        for vendor in ("openai", "pinecone", "callkaro")
    }
    actors = register_steps(
        broker,
        steps,
        bus=_bus(steps, throttles),
        options=resolve_options(steps, StepSettings(), {}),
    )

    held: dict[str, list[Throttle]] = {}
    for name, actor in actors.items():
        assert isinstance(actor.fn, StepShell)
        throttle = actor.fn.throttle
        held[name] = list(throttle.throttles) if isinstance(throttle, Throttles) else []
    assert held["analyze_call"] == [throttles["openai"]]
    assert held["index_call"] == [throttles["openai"], throttles["pinecone"]]
    assert held["place_user_call"] == held["place_callback_call"] == [throttles["callkaro"]]
    assert held["persist_call"] == held["record_health_check"] == held["select_due_calls"] == []


def test_a_step_calling_a_vendor_without_a_throttle_is_refused(broker: StubBroker) -> None:
    steps = bound_steps(vendors=True)

    with pytest.raises(ValueError, match=r"analyze_call calls \[.openai.\] but no throttle"):
        register_steps(
            broker, steps, bus=_bus(steps), options=resolve_options(steps, StepSettings(), {})
        )
