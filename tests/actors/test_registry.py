from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from dramatiq.brokers.stub import StubBroker
from pydantic import ValidationError

from actors.registry import PIPELINE, WorkerPorts, register_actors
from actors.shell import StepShell
from contracts import CONTRACTS
from contracts.errors import PermanentError
from infra.bus.publishing import InMemoryPublisher
from infra.settings import StepSettings
from tests.actors.test_shell import RecordingProgress
from tests.builders import make_analysis
from tests.fakes import (
    FakeEmbedder,
    FakeTranscriptSource,
    FixedAnalyzer,
    FixedClock,
    InMemoryCallStore,
    InMemoryCheckpoints,
    InMemoryVectorIndex,
)


def fake_ports() -> WorkerPorts:
    store = InMemoryCallStore()
    return WorkerPorts(
        transcripts=FakeTranscriptSource(),
        analyzer=FixedAnalyzer(make_analysis()),
        embedder=FakeEmbedder(),
        vectors=InMemoryVectorIndex(),
        calls=store,
        callbacks=store,
        health=store,
        checkpoints=InMemoryCheckpoints(),
        now=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
    )


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    yield broker
    broker.close()


def test_every_route_has_a_registered_actor_and_every_actor_a_route(broker: StubBroker) -> None:
    actors = register_actors(
        broker,
        ports=fake_ports(),
        publisher=InMemoryPublisher(),
        progress=RecordingProgress(),
        throttles={},
        settings=StepSettings(),
    )

    routes = {(c.route.actor, c.route.queue) for c in CONTRACTS}
    registered = {(name, actor.queue_name) for name, actor in actors.items()}
    assert registered == routes
    assert set(broker.get_declared_actors()) == {actor for actor, _ in routes}
    assert {step.contract for step in PIPELINE} == set(CONTRACTS)


def test_actors_carry_the_retry_backoff_time_limit_and_permanent_errors(
    broker: StubBroker,
) -> None:
    settings = StepSettings(
        max_retries=2, transcript_max_retries=7, min_backoff_ms=5, max_backoff_ms=50
    )
    actors = register_actors(
        broker,
        ports=fake_ports(),
        publisher=InMemoryPublisher(),
        progress=RecordingProgress(),
        throttles={},
        settings=settings,
    )

    assert actors["fetch_transcript"].options["max_retries"] == 7
    assert actors["analyze_call"].options["max_retries"] == 2
    for actor in actors.values():
        assert actor.options["min_backoff"] == 5
        assert actor.options["max_backoff"] == 50
        assert actor.options["time_limit"] == settings.time_limit_ms
        assert actor.options["throws"] == (PermanentError, ValidationError)


class NamedThrottle:
    """A throttle that never waits."""

    @contextmanager
    def slot(self) -> Iterator[None]:
        yield


def test_only_the_vendor_steps_run_inside_their_throttle(broker: StubBroker) -> None:
    throttles = {step.name: NamedThrottle() for step in PIPELINE}
    actors = register_actors(
        broker,
        ports=fake_ports(),
        publisher=InMemoryPublisher(),
        progress=RecordingProgress(),
        throttles=throttles,
        settings=StepSettings(),
    )

    shells = {name: actor.fn for name, actor in actors.items() if isinstance(actor.fn, StepShell)}
    assert shells.keys() == actors.keys()
    throttled = {name for name, shell in shells.items() if shell.throttle is not None}
    assert throttled == {"fetch_transcript", "analyze_call", "index_call"}
    assert shells["analyze_call"].throttle is throttles["analyze_call"]
