"""CallSimulator: signed status webhooks played back, in order, to a local receiver."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from contracts.daily_calls import PlaceCallbackJobData, PlaceUserCallJobData
from contracts.errors import TransientError
from infra.sockets import free_port
from infra.vendors.call_simulator import CallSimulator
from infra.vendors.telephony_signing import SIGNATURE_HEADER, verify

SECRET = "simulator-test-secret"
WAIT_S = 2.0


@dataclass(frozen=True)
class Post:
    """One webhook the receiver got."""

    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """The API's webhook endpoint, reduced to recording POSTs (on a chosen port)."""

    def __init__(self, port: int = 0) -> None:
        self.posts: list[Post] = []
        self.statuses: deque[int] = deque()
        self._arrived = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/webhooks/callkaro"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[Post]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.posts) >= count, timeout_s)
            return list(self.posts)

    def _record(self, post: Post) -> int:
        with self._arrived:
            status = self.statuses.popleft() if self.statuses else 200
            if status < 400:
                self.posts.append(post)
            self._arrived.notify_all()
            return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                post = Post(dict(self.headers.items()), self.rfile.read(length))
                self.send_response(receiver._record(post))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Silence per-request logging."""

        return Handler


MakeSimulator = Callable[..., CallSimulator]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def make_simulator() -> Iterator[MakeSimulator]:
    built: list[CallSimulator] = []

    def make(
        url: str, *, outcomes: Mapping[str, str] | None = None, **options: Any
    ) -> CallSimulator:
        simulator = CallSimulator(
            url, SECRET, step_s=options.pop("step_s", 0.0), outcomes=outcomes or {}, **options
        )
        built.append(simulator)
        return simulator

    yield make
    for simulator in built:
        simulator.close(timeout_s=1.0)


def user_call(phone: str = "+14155550100", call_id: str = "call-1") -> PlaceUserCallJobData:
    return PlaceUserCallJobData(
        job_id="job-1",
        tenant_id="acme",
        correlation_id="corr-1",
        call_id=call_id,
        phone=phone,
        attempt=1,
        user_id="user-7",
        local_date=date(2026, 3, 14),
    )


def statuses_by_call(posts: list[Post]) -> dict[str, list[str]]:
    by_call: dict[str, list[str]] = {}
    for post in posts:
        body = post.json
        by_call.setdefault(body["metadata"]["call_id"], []).append(body["status"])
    return by_call


def test_a_completed_call_rings_then_runs_then_completes_with_signed_webhooks(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    simulator = make_simulator(receiver.url)

    provider_call_id = simulator.place(user_call())
    posts = receiver.wait_for(3)

    assert provider_call_id.startswith("sim_")
    assert len(provider_call_id) == len("sim_") + 32
    assert [post.json["status"] for post in posts] == ["ringing", "in_progress", "completed"]
    for post in posts:
        verify(SECRET, post.headers[SIGNATURE_HEADER], post.body, now=time.time(), tolerance_s=5)
        assert post.headers["Content-Type"] == "application/json"
        assert post.headers[SIGNATURE_HEADER].startswith("t=")
    completed = posts[-1].json
    assert completed["call_id"] == provider_call_id
    assert completed["metadata"] == {
        "call_id": "call-1",
        "tenant_id": "acme",
        "attempt": 1,
        "user_id": "user-7",
        "local_date": "2026-03-14",
    }
    assert isinstance(completed["duration"], int)
    assert completed["duration"] > 0
    assert len({post.json["event_id"] for post in posts}) == 3
    sent_at = datetime.fromisoformat(completed["timestamp"])
    assert sent_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - sent_at) < timedelta(seconds=5)
    assert simulator.vendor is None


def test_a_webhook_signed_with_another_secret_does_not_verify(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    make_simulator(receiver.url).place(user_call())
    post = receiver.wait_for(1)[0]

    with pytest.raises(ValueError, match="does not match"):
        verify("other", post.headers[SIGNATURE_HEADER], post.body, now=time.time(), tolerance_s=5)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("completed", ["ringing", "in_progress", "completed"]),
        ("failed", ["ringing", "failed"]),
        ("no_answer", ["ringing", "no_answer"]),
        ("busy", ["busy"]),
    ],
)
def test_each_outcome_plays_its_statuses_in_order(
    receiver: Receiver, make_simulator: MakeSimulator, outcome: str, expected: list[str]
) -> None:
    phone = "+14155550123"
    simulator = make_simulator(receiver.url, outcomes={phone: outcome})

    simulator.place(user_call(phone))
    posts = receiver.wait_for(len(expected))
    time.sleep(0.05)  # nothing more may follow

    assert [post.json["status"] for post in receiver.posts] == expected
    last = posts[-1].json
    assert ("error_message" in last) == (outcome == "failed")
    assert ("duration" in last) == (outcome == "completed")


def test_several_calls_interleave_and_each_keeps_its_order(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    outcomes = {"+14155550101": "busy", "+14155550102": "failed", "+14155550103": "no_answer"}
    simulator = make_simulator(receiver.url, outcomes=outcomes, step_s=0.05)
    commands = [
        user_call(phone, call_id=f"call-{index}")
        for index, phone in enumerate([*outcomes, "+14155550104"], start=1)
    ]

    for command in commands:
        simulator.place(command)
    posts = receiver.wait_for(8)

    assert statuses_by_call(posts) == {
        "call-1": ["busy"],
        "call-2": ["ringing", "failed"],
        "call-3": ["ringing", "no_answer"],
        "call-4": ["ringing", "in_progress", "completed"],
    }
    first_statuses = [post.json["status"] for post in posts[:4]]
    assert first_statuses.count("ringing") == 3  # the calls' first steps come first


def test_a_callback_carries_its_conversation_in_the_metadata(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    callback = PlaceCallbackJobData(
        job_id="job-2",
        tenant_id="acme",
        correlation_id="corr-2",
        call_id="call-9",
        phone="+14155550100",
        attempt=2,
        conversation_id="conv-9",
    )

    make_simulator(receiver.url, outcomes={"+14155550100": "busy"}).place(callback)

    assert receiver.wait_for(1)[0].json["metadata"] == {
        "call_id": "call-9",
        "tenant_id": "acme",
        "attempt": 2,
        "conversation_id": "conv-9",
    }


def test_events_wait_their_steps(receiver: Receiver, make_simulator: MakeSimulator) -> None:
    simulator = make_simulator(receiver.url, step_s=0.1)
    started = time.monotonic()

    simulator.place(user_call())
    receiver.wait_for(3)

    assert time.monotonic() - started >= 0.3


def test_webhooks_are_retried_until_a_restarting_receiver_is_back(
    make_simulator: MakeSimulator,
) -> None:
    port = free_port()
    simulator = make_simulator(f"http://127.0.0.1:{port}/api/webhooks/callkaro")

    simulator.place(user_call())
    time.sleep(0.2)  # the first POSTs find nothing listening
    receiver = Receiver(port)
    try:
        posts = receiver.wait_for(3, timeout_s=3.0)
    finally:
        receiver.stop()

    assert [post.json["status"] for post in posts] == ["ringing", "in_progress", "completed"]


def test_a_5xx_is_retried_with_the_same_event(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    receiver.statuses.extend([503, 500])
    simulator = make_simulator(receiver.url, outcomes={"+14155550100": "busy"})

    simulator.place(user_call())
    posts = receiver.wait_for(1)

    assert [post.json["status"] for post in posts] == ["busy"]
    assert not receiver.statuses  # both failures were seen before the success


def test_a_4xx_is_dropped_with_a_warning_and_later_events_still_go(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    receiver.statuses.append(401)
    simulator = make_simulator(receiver.url)

    with capture_logs() as logs:
        simulator.place(user_call())
        posts = receiver.wait_for(2)

    assert [post.json["status"] for post in posts] == ["in_progress", "completed"]
    [warning] = [log for log in logs if log["log_level"] == "warning"]
    assert warning["event"] == "simulated webhook rejected; dropped"
    assert (warning["call_id"], warning["status"], warning["error"]) == (
        "call-1",
        "ringing",
        "answered 401",
    )


def test_an_event_is_dropped_after_its_retries_and_the_next_one_is_tried(
    make_simulator: MakeSimulator,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    simulator = make_simulator(url, retry_pauses_s=(0.01, 0.01))

    with capture_logs() as logs:
        simulator.place(user_call())
        simulator.close(timeout_s=1.0)

    dropped = [log for log in logs if log["event"] == "simulated webhook undelivered; dropped"]
    assert [log["status"] for log in dropped] == ["ringing", "in_progress", "completed"]
    assert all("ConnectError" in log["error"] for log in dropped)


def test_close_delivers_pending_events_at_once_and_stops_the_thread(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    simulator = make_simulator(receiver.url, step_s=30.0)
    simulator.place(user_call())
    started = time.monotonic()

    simulator.close(timeout_s=2.0)

    assert time.monotonic() - started < 1.0
    statuses = [post.json["status"] for post in receiver.posts]
    assert statuses == ["ringing", "in_progress", "completed"]
    assert not any(thread.name == "call-simulator" for thread in threading.enumerate())
    with pytest.raises(TransientError, match="closed"):
        simulator.place(user_call())


def test_close_gives_up_on_an_unreachable_receiver_within_its_timeout(
    make_simulator: MakeSimulator,
) -> None:
    simulator = make_simulator(f"http://127.0.0.1:{free_port()}/", step_s=30.0)
    simulator.place(user_call())
    started = time.monotonic()

    with capture_logs() as logs:
        simulator.close(timeout_s=0.3)

    assert time.monotonic() - started < 1.5
    assert any(log["event"] == "simulated webhook undelivered; dropped" for log in logs)


def test_the_thread_starts_with_the_first_call_and_close_is_safe_twice(
    receiver: Receiver, make_simulator: MakeSimulator
) -> None:
    simulator = make_simulator(receiver.url)
    assert not any(thread.name == "call-simulator" for thread in threading.enumerate())

    simulator.place(user_call())
    simulator.place(user_call(call_id="call-2"))
    receiver.wait_for(6)
    simulator_threads = [t for t in threading.enumerate() if t.name == "call-simulator"]

    assert len(simulator_threads) == 1
    assert simulator_threads[0].daemon
    simulator.close()
    simulator.close()


def test_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="voicemail"):
        CallSimulator("http://127.0.0.1:1/", SECRET, step_s=0, outcomes={"+1": "voicemail"})
