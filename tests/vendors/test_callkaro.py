"""CallKaroTelephony through a real httpx client against the local CallKaro stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from contracts.daily_calls import PlaceCall, PlaceCallbackJobData, PlaceUserCallJobData
from contracts.errors import OutcomeUnknown, PermanentError, TransientError
from infra.settings import CallKaroSettings
from infra.sockets import free_port
from infra.vendors.callkaro import CallKaroTelephony
from tests.standins.callkaro_server import CallKaroStandIn

PHONE = "+919876543210"

MakeTelephony = Callable[..., CallKaroTelephony]
"""Builds an adapter on the stand-in (settings overridable), closed after the test."""


def user_call(**overrides: Any) -> PlaceUserCallJobData:
    values: dict[str, Any] = {
        "job_id": "job-1",
        "tenant_id": "acme",
        "correlation_id": "corr-1",
        "call_id": "call-1",
        "phone": PHONE,
        "attempt": 1,
        "user_id": "user-7",
        "local_date": date(2026, 3, 14),
    }
    return PlaceUserCallJobData.model_validate({**values, **overrides})


def callback_call(**overrides: Any) -> PlaceCallbackJobData:
    values: dict[str, Any] = {
        "job_id": "job-2",
        "tenant_id": "acme",
        "correlation_id": "corr-2",
        "call_id": "call-2",
        "phone": PHONE,
        "attempt": 2,
        "conversation_id": "conv-9",
    }
    return PlaceCallbackJobData.model_validate({**values, **overrides})


@pytest.fixture
def make_telephony(callkaro_standin: CallKaroStandIn) -> Iterator[MakeTelephony]:
    built: list[CallKaroTelephony] = []

    def make(**overrides: Any) -> CallKaroTelephony:
        values: dict[str, Any] = {
            "api_key": SecretStr(callkaro_standin.api_key),
            "base_url": callkaro_standin.url,
            "agent_id": "agent-default",
            "timeout_s": 1.0,
        }
        telephony = CallKaroTelephony(CallKaroSettings(**{**values, **overrides}))
        built.append(telephony)
        return telephony

    yield make
    for telephony in built:
        telephony.close()


def test_a_user_call_is_placed_with_the_documented_body_and_key(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    telephony = make_telephony()

    provider_call_id = telephony.place(user_call())

    [request] = callkaro_standin.requests
    assert (request.method, request.path) == ("POST", "/call/outbound")
    assert request.headers["x-api-key"] == "ck-test"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "to_number": PHONE,
        "agent_id": "agent-default",
        "metadata": {
            "call_id": "call-1",
            "tenant_id": "acme",
            "attempt": 1,
            "user_id": "user-7",
            "local_date": "2026-03-14",
        },
    }
    assert callkaro_standin.calls == {provider_call_id: request.json()}
    assert telephony.vendor == "callkaro"


def test_a_callback_carries_its_conversation_in_the_metadata(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    make_telephony().place(callback_call())

    assert callkaro_standin.requests[0].json()["metadata"] == {
        "call_id": "call-2",
        "tenant_id": "acme",
        "attempt": 2,
        "conversation_id": "conv-9",
    }


def test_a_bare_place_call_sends_only_the_common_metadata(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    command = PlaceCall(
        job_id="j", tenant_id="acme", correlation_id="c", call_id="call-3", phone=PHONE, attempt=1
    )

    make_telephony().place(command)

    assert callkaro_standin.requests[0].json()["metadata"] == {
        "call_id": "call-3",
        "tenant_id": "acme",
        "attempt": 1,
    }


def test_the_commands_agent_wins_over_the_default_agent(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    callkaro_standin.agents.add("agent-tenant")

    make_telephony().place(user_call(agent_id="agent-tenant"))

    assert callkaro_standin.requests[0].json()["agent_id"] == "agent-tenant"


def test_a_call_without_any_agent_is_refused_before_any_request(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    telephony = make_telephony(agent_id=None)

    with pytest.raises(PermanentError, match="SWITCHBOARD_CALLKARO__AGENT_ID") as caught:
        telephony.place(user_call())

    assert "CALLKARO_AGENT_ID" in str(caught.value)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert callkaro_standin.requests == []


@pytest.mark.parametrize(
    ("command_caller", "default_caller", "expected"),
    [
        (None, None, None),
        (None, "+14155550100", "+14155550100"),
        ("+14155550199", "+14155550100", "+14155550199"),
    ],
)
def test_from_number_is_the_commands_caller_id_else_the_default_else_absent(
    callkaro_standin: CallKaroStandIn,
    make_telephony: MakeTelephony,
    command_caller: str | None,
    default_caller: str | None,
    expected: str | None,
) -> None:
    make_telephony(caller_id=default_caller).place(user_call(caller_id=command_caller))

    assert callkaro_standin.requests[0].json().get("from_number") == expected


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Missing agent_id"), (403, "Missing API key"), (404, "Agent not found")],
)
def test_a_refusal_is_permanent_and_carries_the_providers_message(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony, status: int, message: str
) -> None:
    callkaro_standin.refuse_next(status, message)

    with pytest.raises(PermanentError, match=f"{status}.*{message}") as caught:
        make_telephony().place(user_call())

    assert not isinstance(caught.value, OutcomeUnknown)


def test_an_unknown_agent_and_a_wrong_key_are_refused_by_the_standin_itself(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    with pytest.raises(PermanentError, match=r"404.*agent-missing not found"):
        make_telephony().place(user_call(agent_id="agent-missing"))
    with pytest.raises(PermanentError, match=r"403.*Invalid API key") as caught:
        make_telephony(api_key=SecretStr("ck-wrong-key")).place(user_call())

    assert "ck-wrong-key" not in str(caught.value)
    assert callkaro_standin.calls == {}


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttling_and_server_errors_are_transient(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony, status: int
) -> None:
    callkaro_standin.refuse_next(status, "try later")

    with pytest.raises(TransientError, match=str(status)):
        make_telephony().place(user_call())


def test_a_refused_connection_is_transient_and_never_shows_the_key() -> None:
    settings = CallKaroSettings(
        api_key=SecretStr("ck-secret-value"),
        base_url=f"http://127.0.0.1:{free_port()}",
        agent_id="agent-default",
        timeout_s=1.0,
    )
    telephony = CallKaroTelephony(settings)
    try:
        with pytest.raises(TransientError, match="unreachable") as caught:
            telephony.place(user_call())
    finally:
        telephony.close()

    assert "ck-secret-value" not in str(caught.value)


def test_no_answer_before_the_timeout_is_an_unknown_outcome(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    callkaro_standin.hang_next(delay_s=5.0)

    with pytest.raises(OutcomeUnknown, match="ReadTimeout"):
        make_telephony(timeout_s=0.2).place(user_call())

    assert len(callkaro_standin.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "message": "Call initiated successfully"},
        {"status": "success", "call_id": ""},
        {"status": "success", "call_id": 12345},
        ["not", "an", "object"],
    ],
)
def test_a_success_without_a_call_id_is_an_unknown_outcome(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony, body: Any
) -> None:
    callkaro_standin.fail_next(200, path_prefix="/call/outbound", body=body)

    with pytest.raises(OutcomeUnknown, match="without a call_id"):
        make_telephony().place(user_call())


def test_the_standins_own_missing_call_id_script_is_an_unknown_outcome(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    callkaro_standin.answer_without_call_id()

    with pytest.raises(OutcomeUnknown, match="Call initiated successfully"):
        make_telephony().place(user_call())


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectError("refused"), TransientError),
        (httpx.ConnectTimeout("slow connect"), TransientError),
        (httpx.PoolTimeout("pool full"), TransientError),
        (httpx.ReadTimeout("slow answer"), OutcomeUnknown),
        (httpx.WriteTimeout("slow upload"), OutcomeUnknown),
        (httpx.ReadError("reset"), OutcomeUnknown),
        (httpx.RemoteProtocolError("Server disconnected"), OutcomeUnknown),
    ],
)
def test_transport_failures_are_sorted_by_whether_the_request_was_sent(
    failure: httpx.RequestError, expected: type[Exception]
) -> None:
    # The stand-in cannot reset a connection mid-reply on demand: fake at the transport.
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    settings = CallKaroSettings(api_key=SecretStr("ck-test"), agent_id="agent-default")
    client = httpx.Client(base_url=settings.base_url, transport=httpx.MockTransport(fail))
    telephony = CallKaroTelephony(settings, client=client)

    with pytest.raises(expected) as caught:
        telephony.place(user_call())

    assert type(caught.value) is expected
    telephony.close()
    assert not client.is_closed  # an injected client belongs to the caller
    client.close()


def test_the_ping_asks_with_the_key_and_places_no_call(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    make_telephony().ping()

    [request] = callkaro_standin.requests
    assert (request.method, request.path) == ("GET", "/")
    assert request.headers["x-api-key"] == "ck-test"
    assert callkaro_standin.calls == {}


@pytest.mark.parametrize("status", [500, 503])
def test_a_ping_answered_5xx_is_transient(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony, status: int
) -> None:
    callkaro_standin.fail_next(status)

    with pytest.raises(TransientError, match=str(status)):
        make_telephony().ping()


def test_a_ping_that_cannot_connect_or_times_out_is_transient(
    callkaro_standin: CallKaroStandIn, make_telephony: MakeTelephony
) -> None:
    callkaro_standin.fail_next(200, delay_s=5.0)

    with pytest.raises(TransientError):
        make_telephony(timeout_s=0.2).ping()
    with pytest.raises(TransientError, match="unreachable"):
        make_telephony(base_url=f"http://127.0.0.1:{free_port()}").ping()


def test_close_closes_the_client_it_built(make_telephony: MakeTelephony) -> None:
    telephony = make_telephony()
    telephony.close()

    with pytest.raises(RuntimeError, match="closed"):
        telephony.place(user_call())
