"""Fixtures of the bus tests: brokers on a real Redis, closed after each test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from dramatiq.middleware import Middleware

from infra.bus.broker import SwitchboardBroker, build_broker
from infra.settings import BrokerSettings


@pytest.fixture
def bus_settings() -> BrokerSettings:
    return BrokerSettings(
        namespace=f"sbtest-{uuid.uuid4().hex[:8]}",
        heartbeat_timeout_ms=1_000,
        maintenance_interval_s=0.3,
        socket_timeout_s=2.0,
    )


@pytest.fixture
def make_broker(
    bus_settings: BrokerSettings, redis_url: str
) -> Iterator[Callable[..., SwitchboardBroker]]:
    brokers: list[SwitchboardBroker] = []

    def make(*middleware: Middleware) -> SwitchboardBroker:
        broker = build_broker(bus_settings, redis_url, middleware=middleware)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.close()
