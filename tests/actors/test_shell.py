from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from actors.pipeline import ActorOptions, BoundStep, Handler
from actors.shell import MessageRefs, StepShell, progress_on_failure
from contracts import CallTranscribed, Contract, PostCallJobData
from contracts.errors import NotReadyError, PermanentError, TransientError
from infra.bus.publishing import Envelope, InMemoryPublisher
from infra.logs import configure_logging
from infra.settings import Settings
from tests.builders import TENANT_ID, make_post_call_job, make_transcribed
from tests.fakes import RecordingDeferral, RecordingProgress

REFS = MessageRefs({"fetch_transcript": 0, "analyze_call": 1})


def _step(handler: Handler[Any], contract: type[Contract] = PostCallJobData) -> BoundStep:
    return BoundStep(
        pipeline="post_call",
        position=REFS.named("k", contract.route.actor).position,
        contract=contract,
        handler=handler,
        vendors=(),
        options=ActorOptions(),
    )


@dataclass
class RecordingThrottle:
    """A throttle that records when its slot is held, and can be full."""

    log: list[str]
    free: bool = True

    @contextmanager
    def slot(self) -> Iterator[bool]:
        if not self.free:
            self.log.append("no slot")
            yield False
            return
        self.log.append("slot taken")
        yield True
        self.log.append("slot released")


def _shell(
    handler: Handler[Any],
    publisher: InMemoryPublisher,
    progress: RecordingProgress,
    *,
    throttle: RecordingThrottle | None = None,
    deferral: RecordingDeferral | None = None,
    contract: type[Contract] = PostCallJobData,
) -> StepShell:
    return StepShell(
        step=_step(handler, contract),
        publisher=publisher,
        progress=progress,
        refs=REFS,
        throttle=throttle,
        deferral=deferral or RecordingDeferral(),
    )


KEY = f"post-call:{TENANT_ID}:conv_0001"
NEXT_KEY = f"call-transcribed:{TENANT_ID}:conv_0001"


def test_results_are_published_only_after_the_handler_returned() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()
    seen_during_handler: list[int] = []

    def handler(message: PostCallJobData) -> Sequence[Contract]:
        seen_during_handler.append(len(publisher.published))
        return [make_transcribed(conversation_id=message.conversation_id)]

    _shell(handler, publisher, progress)(job.model_dump(mode="json"))

    assert seen_during_handler == [0]
    assert publisher.published == [Envelope.of(make_transcribed())]
    assert publisher.published[0].options["job_id"] == job.job_id
    assert progress.events == [
        ("started", job.job_id, KEY),
        ("succeeded", job.job_id, KEY, [NEXT_KEY]),
    ]


def test_a_step_that_returns_nothing_reports_no_children() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()

    _shell(lambda _message: [], publisher, progress)(job.model_dump(mode="json"))

    assert publisher.published == []
    assert progress.events[-1] == ("succeeded", job.job_id, KEY, [])


def test_a_fan_out_publishes_every_child_and_reports_each_key() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()
    children = [make_transcribed(conversation_id=f"conv_{n}") for n in range(3)]

    _shell(lambda _message: children, publisher, progress)(job.model_dump(mode="json"))

    assert publisher.published == [Envelope.of(child) for child in children]
    assert progress.events[-1] == (
        "succeeded",
        job.job_id,
        KEY,
        [child.idempotency_key for child in children],
    )


@dataclass
class OneByOnePublisher:
    """A publisher without ``publish_many`` (the relay's, a test double's)."""

    published: list[Envelope]

    def publish(self, envelope: Envelope) -> str:
        self.published.append(envelope)
        return str(len(self.published))


@dataclass
class BatchRecordingPublisher(InMemoryPublisher):
    """Records how the shell published: one call per batch or per message."""

    calls: list[int] | None = None

    def publish_many(self, envelopes: Sequence[Envelope]) -> list[str]:
        self.calls = [*(self.calls or []), len(envelopes)]
        return super().publish_many(envelopes)


def test_a_fan_out_is_published_in_one_batch_when_the_publisher_can() -> None:
    publisher, progress = BatchRecordingPublisher(), RecordingProgress()
    job = make_post_call_job()
    children = [make_transcribed(conversation_id=f"conv_{n}") for n in range(250)]

    _shell(lambda _message: children, publisher, progress)(job.model_dump(mode="json"))

    assert publisher.calls == [250]
    assert publisher.published == [Envelope.of(child) for child in children]


def test_a_fan_out_is_published_one_by_one_by_a_publisher_without_batches() -> None:
    publisher, progress = OneByOnePublisher([]), RecordingProgress()
    job = make_post_call_job()
    children = [make_transcribed(conversation_id=f"conv_{n}") for n in range(3)]

    StepShell(
        step=_step(lambda _message: children),
        publisher=publisher,
        progress=progress,
        refs=REFS,
        throttle=None,
        deferral=RecordingDeferral(),
    )(job.model_dump(mode="json"))

    assert publisher.published == [Envelope.of(child) for child in children]


def test_a_step_may_not_publish_into_another_job() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()

    def handler(_message: PostCallJobData) -> Sequence[Contract]:
        return [make_transcribed(job_id="someone-elses-job")]

    with pytest.raises(PermanentError, match="not of its own job"):
        _shell(handler, publisher, progress)(make_post_call_job().model_dump(mode="json"))

    assert publisher.published == []


def test_an_invalid_payload_raises_a_validation_error_before_anything_runs() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    ran: list[object] = []

    def handler(message: PostCallJobData) -> Sequence[Contract]:
        ran.append(message)
        return []

    with pytest.raises(ValidationError):
        _shell(handler, publisher, progress)({"conversation_id": "c1"})

    assert ran == []
    assert progress.events == []
    assert publisher.published == []


def test_a_failing_handler_publishes_nothing_and_does_not_mark_success() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()

    def handler(_message: PostCallJobData) -> Sequence[Contract]:
        raise TransientError("vendor 503")

    with pytest.raises(TransientError):
        _shell(handler, publisher, progress)(job.model_dump(mode="json"))

    assert publisher.published == []
    assert progress.events == [("started", job.job_id, KEY)]


def _log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_an_expected_failure_is_one_line_with_the_jobs_context_and_is_raised_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format="json"), process="worker")
    job = make_post_call_job()

    def not_ready(_message: PostCallJobData) -> Sequence[Contract]:
        raise NotReadyError("conversation conv_0001 is 'processing', not 'done' yet")

    with pytest.raises(NotReadyError):
        _shell(not_ready, InMemoryPublisher(), RecordingProgress())(job.model_dump(mode="json"))

    [line] = _log_lines(capsys)
    assert line["event"] == "expected failure"
    assert line["level"] == "info"
    assert line["error"] == "NotReadyError: conversation conv_0001 is 'processing', not 'done' yet"
    assert line["retried"] is True
    assert (line["job_id"], line["step"], line["correlation_id"]) == (
        job.job_id,
        "fetch_transcript",
        job.correlation_id,
    )
    assert "exception" not in line


@pytest.mark.parametrize(
    "error", [TransientError("OpenAI unavailable"), ValueError("a bug")], ids=["transient", "bug"]
)
def test_the_shell_leaves_other_failures_to_dramatiqs_lines(
    error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"), process="worker")

    def failing(_message: PostCallJobData) -> Sequence[Contract]:
        raise error

    with pytest.raises(type(error)):
        _shell(failing, InMemoryPublisher(), RecordingProgress())(
            make_post_call_job().model_dump(mode="json")
        )

    assert _log_lines(capsys) == []


def test_a_throttled_step_runs_its_handler_inside_the_slot() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    log: list[str] = []

    def handler(_message: PostCallJobData) -> Sequence[Contract]:
        log.append("handler")
        return [make_transcribed()]

    shell = _shell(handler, publisher, progress, throttle=RecordingThrottle(log))
    shell(make_post_call_job().model_dump(mode="json"))

    assert log == ["slot taken", "handler", "slot released"]
    assert len(publisher.published) == 1


def test_a_step_whose_vendor_is_busy_is_deferred_without_running_or_failing() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    log: list[str] = []
    deferral = RecordingDeferral()

    def handler(_message: PostCallJobData) -> Sequence[Contract]:
        log.append("handler")
        return []

    shell = _shell(
        handler,
        publisher,
        progress,
        throttle=RecordingThrottle(log, free=False),
        deferral=deferral,
    )
    shell(make_post_call_job().model_dump(mode="json"))

    assert log == ["no slot"]
    assert deferral.deferred == 1
    assert progress.events == []
    assert publisher.published == []


def test_the_shell_validates_into_its_own_contract_type() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    received: list[object] = []

    def handler(message: CallTranscribed) -> Sequence[Contract]:
        received.append(message)
        return []

    shell = _shell(handler, publisher, progress, contract=CallTranscribed)
    shell(make_transcribed().model_dump(mode="json"))

    assert received == [make_transcribed()]


@dataclass
class FakeMessage:
    message_id: str
    actor_name: str
    options: dict[str, object]


def test_the_failure_hook_reports_to_the_job_named_in_the_message_options() -> None:
    progress = RecordingProgress()
    hook = progress_on_failure(progress, REFS)
    options: dict[str, object] = {"job_id": "j1", "idempotency_key": "k1"}

    hook(FakeMessage("m1", "analyze_call", options), TransientError("503"), False)
    hook(FakeMessage("m1", "analyze_call", options), TransientError("503"), True)
    hook(FakeMessage("m2", "analyze_call", {}), TransientError("503"), True)

    assert progress.events == [
        ("failed", "j1", "k1", "TransientError: 503", None),
        ("failed", "j1", "k1", "TransientError: 503", "m1"),
    ]
