"""Adapters.telephony(): the simulator by default, CallKaro when configured, and the secret."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from actors.ports import Telephony
from contracts.daily_calls import PlaceCallbackJobData
from contracts.errors import TransientError
from infra.local_adapters import LocalAdapterRefused
from infra.settings import Settings
from infra.vendors.call_simulator import CallSimulator
from infra.vendors.callkaro import CallKaroTelephony
from infra.vendors.telephony_signing import (
    SIGNATURE_HEADER,
    SIMULATOR_SECRET_FILE,
    simulator_secret,
    verify,
)
from infra.vendors.wiring import Adapters, telephony_webhook_secret
from tests.standins.callkaro_server import CallKaroStandIn

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

MakeAdapters = Callable[[Settings], Adapters]

CALL = PlaceCallbackJobData(
    job_id="j",
    tenant_id="acme",
    correlation_id="c",
    call_id="call-1",
    phone="+14155550100",
    attempt=1,
    conversation_id="conv-1",
)


def settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, **sections})


@pytest.fixture
def make_adapters(sqlite_engine: sa.Engine) -> Iterator[MakeAdapters]:
    built: list[Adapters] = []

    def make(configured: Settings) -> Adapters:
        adapters = Adapters(configured, engine=sqlite_engine, redis_url=UNREACHABLE_REDIS)
        built.append(adapters)
        return adapters

    yield make
    for adapters in built:
        adapters.close()


def test_nothing_configured_selects_the_simulator_labelled_local(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(settings(tmp_path))

    telephony = adapters.telephony()

    assert isinstance(telephony, CallSimulator)
    assert telephony.vendor is None
    assert adapters.labels == {"telephony": "local-simulator"}
    assert adapters.local == ["telephony"]
    assert adapters.probes() == []
    assert adapters.telephony() is telephony
    assert (tmp_path / SIMULATOR_SECRET_FILE).exists()


def test_a_callkaro_key_selects_callkaro_with_a_readiness_probe(
    tmp_path: Path, make_adapters: MakeAdapters, callkaro_standin: CallKaroStandIn
) -> None:
    configured = settings(
        tmp_path, callkaro={"api_key": callkaro_standin.api_key, "base_url": callkaro_standin.url}
    )
    adapters = make_adapters(configured)

    telephony = adapters.telephony()

    assert isinstance(telephony, CallKaroTelephony)
    assert telephony.vendor == "callkaro"
    assert adapters.labels == {"telephony": "callkaro"}
    assert adapters.local == []
    [probe] = adapters.probes()
    assert (probe.name, probe.label) == ("telephony", "callkaro")
    probe.ping()
    assert [(r.method, r.path) for r in callkaro_standin.requests] == [("GET", "/")]
    assert not (tmp_path / SIMULATOR_SECRET_FILE).exists()


def test_both_adapters_implement_the_telephony_port(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    # The annotation is the check: mypy --strict verifies both against the Protocol.
    ports: list[Telephony] = [
        make_adapters(settings(tmp_path)).telephony(),
        make_adapters(settings(tmp_path, callkaro={"api_key": "ck-x"})).telephony(),
    ]

    assert [port.vendor for port in ports] == [None, "callkaro"]


def test_telephony_is_not_built_before_it_is_asked_for(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(settings(tmp_path, callkaro={"api_key": "ck-x"}))

    adapters.analyzer()

    assert "telephony" not in adapters.labels


def test_production_refuses_the_simulator_unless_allowed(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    refused = make_adapters(settings(tmp_path, environment="production"))
    allowed = make_adapters(settings(tmp_path, environment="production", allow_local="telephony"))

    with pytest.raises(LocalAdapterRefused, match="SWITCHBOARD_ALLOW_LOCAL=telephony"):
        refused.telephony()
    assert "telephony" not in refused.labels
    assert isinstance(allowed.telephony(), CallSimulator)
    assert allowed.labels == {"telephony": "local-simulator"}


def test_production_with_a_callkaro_key_needs_no_allowance(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    adapters = make_adapters(
        settings(tmp_path, environment="production", callkaro={"api_key": "ck-x"})
    )

    assert isinstance(adapters.telephony(), CallKaroTelephony)


def test_close_stops_the_simulator(tmp_path: Path, sqlite_engine: sa.Engine) -> None:
    adapters = Adapters(settings(tmp_path), engine=sqlite_engine, redis_url=UNREACHABLE_REDIS)
    telephony = adapters.telephony()

    adapters.close()
    adapters.close()

    with pytest.raises(TransientError, match="closed"):
        telephony.place(CALL)


def test_the_wired_simulator_signs_with_the_secret_the_api_verifies_with(
    tmp_path: Path, make_adapters: MakeAdapters, callkaro_standin: CallKaroStandIn
) -> None:
    # Any recording server will do as the webhook's receiver.
    configured = settings(
        tmp_path,
        simulator={
            "webhook_url": f"{callkaro_standin.url}/api/webhooks/callkaro",
            "step_s": 0,
            "outcomes": {CALL.phone: "busy"},
        },
    )
    adapters = make_adapters(configured)

    adapters.telephony().place(CALL)
    adapters.close()

    [request] = callkaro_standin.requests
    assert request.path == "/api/webhooks/callkaro"
    assert request.json()["status"] == "busy"
    secret = telephony_webhook_secret(configured)
    assert secret is not None
    header = request.headers[SIGNATURE_HEADER.lower()]
    verify(secret, header, request.body, now=time.time(), tolerance_s=5)


def test_the_configured_webhook_secret_wins(tmp_path: Path) -> None:
    for callkaro in ({"webhook_secret": "whsec-1"}, {"webhook_secret": "whsec-1", "api_key": "k"}):
        assert telephony_webhook_secret(settings(tmp_path, callkaro=callkaro)) == "whsec-1"
    assert not (tmp_path / SIMULATOR_SECRET_FILE).exists()


def test_without_a_key_the_simulators_secret_is_used_by_both_sides(
    tmp_path: Path, make_adapters: MakeAdapters
) -> None:
    configured = settings(tmp_path)

    secret = telephony_webhook_secret(configured)

    assert secret == simulator_secret(tmp_path)
    assert telephony_webhook_secret(configured) == secret


def test_a_callkaro_key_without_a_webhook_secret_has_no_secret(tmp_path: Path) -> None:
    assert telephony_webhook_secret(settings(tmp_path, callkaro={"api_key": "ck-x"})) is None
    assert not (tmp_path / SIMULATOR_SECRET_FILE).exists()
