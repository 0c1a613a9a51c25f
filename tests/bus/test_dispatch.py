"""Dispatchers: publish accepted jobs, or leave them to the relay, never making callers wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from contracts.errors import PermanentError, TransientError
from infra.bus.dispatch import BackgroundDispatcher, InlineDispatcher
from infra.bus.publishing import Envelope, InMemoryPublisher
from tests.builders import make_post_call_job

WAIT_S = 5.0
"""Upper bound of every wait for the publishing thread."""

COOLDOWN_S = 10.0


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Marks:
    """The inbox's published marks; can fail like an unreachable database."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.failures = 0

    def mark_published(self, *job_ids: str) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("database unavailable")
        self.published.extend(job_ids)


class RejectingMarks(Marks):
    """Marks whose database rejects one job's write (a constraint, a bad value)."""

    def __init__(self, *, reject: str) -> None:
        super().__init__()
        self.reject = reject

    def mark_published(self, *job_ids: str) -> None:
        if self.reject in job_ids:
            raise PermanentError(f"database rejected the mark of {self.reject}")
        super().mark_published(*job_ids)


class ScriptedPublisher:
    """Records what it published and on which thread; fails or blocks when told to.

    ``fail_next`` publishes raise ``TransientError`` (an unreachable broker); while
    ``gate`` is clear every publish waits on it (a frozen broker), for at most ``bound_s``.
    """

    def __init__(self, *, blocked: bool = False, bound_s: float = 30.0) -> None:
        self.published: list[Envelope] = []
        self.threads: set[str] = set()
        self.attempts = 0
        self.fail_next = 0
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.bound_s = bound_s
        if not blocked:
            self.gate.set()

    def publish(self, envelope: Envelope) -> str:
        self.attempts += 1
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        if not self.gate.wait(self.bound_s):
            raise TransientError("frozen broker never answered")
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("broker unreachable")
        self.published.append(envelope)
        return str(len(self.published))


def envelope(job_id: str) -> Envelope:
    return Envelope.of(make_post_call_job(job_id=job_id, conversation_id=f"conv-{job_id}"))


def job_ids(envelopes: list[Envelope]) -> list[str]:
    return [e.options["job_id"] for e in envelopes]


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def timed(action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


# --- InlineDispatcher ----------------------------------------------------------------------


def test_inline_dispatch_publishes_then_marks_the_job_published() -> None:
    publisher, marks = InMemoryPublisher(), Marks()

    InlineDispatcher(publisher, marks).dispatch("job-1", envelope("job-1"))

    assert publisher.published == [envelope("job-1")]
    assert marks.published == ["job-1"]


def test_inline_dispatch_leaves_the_job_pending_when_the_broker_is_down() -> None:
    publisher, marks = ScriptedPublisher(), Marks()
    publisher.fail_next = 1
    dispatcher = InlineDispatcher(publisher, marks)

    dispatcher.dispatch("job-1", envelope("job-1"))
    dispatcher.dispatch("job-2", envelope("job-2"))

    assert publisher.attempts == 2
    assert job_ids(publisher.published) == ["job-2"]
    assert marks.published == ["job-2"]


# --- BackgroundDispatcher ------------------------------------------------------------------


@pytest.fixture
def make_dispatcher() -> Iterator[Callable[..., BackgroundDispatcher]]:
    started: list[tuple[BackgroundDispatcher, ScriptedPublisher]] = []

    def make(
        publisher: ScriptedPublisher,
        marks: Marks,
        *,
        queue_size: int = 100,
        clock: FakeClock | None = None,
    ) -> BackgroundDispatcher:
        dispatcher = BackgroundDispatcher(
            publisher,
            marks,
            queue_size=queue_size,
            cooldown_s=COOLDOWN_S,
            clock=clock or FakeClock(),
        )
        started.append((dispatcher, publisher))
        return dispatcher

    yield make
    for dispatcher, publisher in started:
        publisher.gate.set()
        dispatcher.stop()


def test_dispatch_returns_at_once_while_the_publisher_is_blocked(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(blocked=True), Marks()
    dispatcher = make_dispatcher(publisher, marks)
    dispatcher.start()

    took: list[float] = []
    for job in ("a", "b", "c"):
        start = time.monotonic()
        dispatcher.dispatch(job, envelope(job))
        took.append(time.monotonic() - start)
        assert publisher.entered.wait(WAIT_S)  # the thread holds "a" in a blocked publish

    assert max(took) < 0.05  # the publisher blocks for up to 30 s
    assert marks.published == []
    publisher.gate.set()
    assert wait_until(lambda: marks.published == ["a", "b", "c"])
    assert job_ids(publisher.published) == ["a", "b", "c"]


def test_jobs_are_published_and_marked_on_the_dispatchers_own_thread(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(), Marks()
    dispatcher = make_dispatcher(publisher, marks)
    dispatcher.start()

    dispatcher.dispatch("job-1", envelope("job-1"))

    assert wait_until(lambda: marks.published == ["job-1"])
    assert publisher.published == [envelope("job-1")]
    assert publisher.threads == {"dispatcher"}
    assert (dispatcher.open, dispatcher.left_for_relay) == (False, 0)


def test_a_failed_publish_opens_the_breaker_and_later_jobs_go_to_the_relay(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    clock = FakeClock()
    publisher, marks = ScriptedPublisher(), Marks()
    publisher.fail_next = 1
    dispatcher = make_dispatcher(publisher, marks, clock=clock)
    dispatcher.start()

    dispatcher.dispatch("job-1", envelope("job-1"))
    assert wait_until(lambda: dispatcher.left_for_relay == 1)
    assert dispatcher.open
    dispatcher.dispatch("job-2", envelope("job-2"))
    clock.advance(COOLDOWN_S - 0.1)
    dispatcher.dispatch("job-3", envelope("job-3"))

    assert dispatcher.left_for_relay == 3
    assert publisher.attempts == 1
    assert publisher.published == []
    assert marks.published == []

    clock.advance(0.2)
    assert not dispatcher.open
    dispatcher.dispatch("job-4", envelope("job-4"))

    assert wait_until(lambda: marks.published == ["job-4"])
    assert job_ids(publisher.published) == ["job-4"]
    assert dispatcher.left_for_relay == 3


def test_jobs_queued_when_the_breaker_opens_are_left_for_the_relay(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    clock = FakeClock()
    publisher, marks = ScriptedPublisher(blocked=True), Marks()
    publisher.fail_next = 1
    dispatcher = make_dispatcher(publisher, marks, clock=clock)
    dispatcher.start()
    dispatcher.dispatch("job-1", envelope("job-1"))
    assert publisher.entered.wait(WAIT_S)  # job-1 is being published; the rest wait
    dispatcher.dispatch("job-2", envelope("job-2"))
    dispatcher.dispatch("job-3", envelope("job-3"))

    publisher.gate.set()  # job-1's publish now fails

    assert wait_until(lambda: dispatcher.left_for_relay == 3)
    assert publisher.attempts == 1
    assert publisher.published == []
    assert marks.published == []


def test_a_full_queue_leaves_the_overflow_for_the_relay(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(), Marks()
    dispatcher = make_dispatcher(publisher, marks, queue_size=2)

    for job in ("job-1", "job-2", "job-3", "job-4"):
        dispatcher.dispatch(job, envelope(job))
    dispatcher.start()
    dispatcher.stop()

    assert dispatcher.left_for_relay == 2
    assert job_ids(publisher.published) == ["job-1", "job-2"]
    assert marks.published == ["job-1", "job-2"]


def test_a_publish_whose_mark_fails_is_not_a_broker_outage(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(), Marks()
    marks.failures = 1
    dispatcher = make_dispatcher(publisher, marks)
    dispatcher.start()

    dispatcher.dispatch("job-1", envelope("job-1"))
    dispatcher.dispatch("job-2", envelope("job-2"))

    assert wait_until(lambda: marks.published == ["job-2"])
    assert job_ids(publisher.published) == ["job-1", "job-2"]
    assert (dispatcher.open, dispatcher.left_for_relay) == (False, 0)


def test_stop_publishes_what_was_queued_and_returns(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(), Marks()
    dispatcher = make_dispatcher(publisher, marks)
    dispatcher.start()
    for job in ("job-1", "job-2", "job-3"):
        dispatcher.dispatch(job, envelope(job))

    took = timed(dispatcher.stop)

    assert took < 1.0
    assert marks.published == ["job-1", "job-2", "job-3"]
    assert timed(dispatcher.stop) < 0.05  # a second stop has nothing to do


def test_stop_without_start_returns_at_once() -> None:
    dispatcher = BackgroundDispatcher(
        InMemoryPublisher(), Marks(), queue_size=1, cooldown_s=COOLDOWN_S
    )

    assert timed(dispatcher.stop) < 0.05


def test_stop_gives_up_on_a_publish_stuck_longer_than_its_timeout(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(blocked=True), Marks()
    dispatcher = make_dispatcher(publisher, marks)
    dispatcher.start()
    dispatcher.dispatch("job-1", envelope("job-1"))
    assert publisher.entered.wait(WAIT_S)

    took = timed(lambda: dispatcher.stop(timeout_s=0.2))

    assert 0.15 < took < 1.0
    assert marks.published == []


def test_stop_returns_within_its_timeout_even_when_the_queue_is_full(
    make_dispatcher: Callable[..., BackgroundDispatcher],
) -> None:
    publisher, marks = ScriptedPublisher(blocked=True), Marks()
    dispatcher = make_dispatcher(publisher, marks, queue_size=1)
    dispatcher.start()
    dispatcher.dispatch("job-1", envelope("job-1"))
    assert publisher.entered.wait(WAIT_S)
    dispatcher.dispatch("job-2", envelope("job-2"))  # fills the queue
    stopping = threading.Thread(target=dispatcher.stop, kwargs={"timeout_s": 0.2}, daemon=True)

    stopping.start()
    stopping.join(1.5)
    try:
        assert not stopping.is_alive()
    finally:
        publisher.gate.set()
        stopping.join(WAIT_S)


def test_a_job_whose_mark_fails_permanently_does_not_stop_the_publishing_thread(
    make_dispatcher: Callable[..., BackgroundDispatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Patched so a thread's death is this test's assertion, not a teardown warning.
    died: list[str] = []
    monkeypatch.setattr(
        threading, "excepthook", lambda args: died.append(f"{args.thread}: {args.exc_value}")
    )
    publisher, marks = ScriptedPublisher(), RejectingMarks(reject="job-1")
    dispatcher = make_dispatcher(publisher, marks)
    dispatcher.start()

    dispatcher.dispatch("job-1", envelope("job-1"))
    dispatcher.dispatch("job-2", envelope("job-2"))

    assert wait_until(lambda: marks.published == ["job-2"] or bool(died), timeout_s=WAIT_S)
    assert died == []
    assert marks.published == ["job-2"]
