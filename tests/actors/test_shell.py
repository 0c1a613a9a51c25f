from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from actors.shell import StepShell, progress_on_failure
from contracts import CallTranscribed, Contract, PostCallJobData
from contracts.errors import TransientError
from infra.bus.publishing import Envelope, InMemoryPublisher
from tests.builders import make_post_call_job, make_transcribed


@dataclass
class RecordingProgress:
    """Records every progress call as a tuple."""

    events: list[tuple[object, ...]] = field(default_factory=list)

    def step_started(self, job_id: str, step: str) -> None:
        self.events.append(("started", job_id, step))

    def step_succeeded(self, job_id: str, step: str, *, final: bool) -> None:
        self.events.append(("succeeded", job_id, step, final))

    def step_failed(self, job_id: str, step: str, *, error: str, dead: bool) -> None:
        self.events.append(("failed", job_id, step, error, dead))


@dataclass
class RecordingThrottle:
    """A throttle that records when its slot is held."""

    log: list[str]

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.log.append("slot taken")
        yield
        self.log.append("slot released")


def _shell(
    handler: object, publisher: InMemoryPublisher, progress: RecordingProgress, **kw: object
) -> StepShell:
    return StepShell(
        step="fetch_transcript",
        contract=PostCallJobData,
        handler=handler,  # type: ignore[arg-type]
        publisher=publisher,
        progress=progress,
        **kw,  # type: ignore[arg-type]
    )


def test_results_are_published_only_after_the_handler_returned() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()
    seen_during_handler: list[int] = []

    def handler(message: PostCallJobData) -> list[Contract]:
        seen_during_handler.append(len(publisher.published))
        return [make_transcribed(conversation_id=message.conversation_id)]

    _shell(handler, publisher, progress)(job.model_dump(mode="json"))

    assert seen_during_handler == [0]
    assert publisher.published == [Envelope.of(make_transcribed(), job_id=job.job_id)]
    assert publisher.published[0].options["job_id"] == job.job_id
    assert progress.events == [
        ("started", job.job_id, "fetch_transcript"),
        ("succeeded", job.job_id, "fetch_transcript", False),
    ]


def test_a_step_that_returns_nothing_completes_the_job() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()

    _shell(lambda _message: [], publisher, progress)(job.model_dump(mode="json"))

    assert publisher.published == []
    assert progress.events[-1] == ("succeeded", job.job_id, "fetch_transcript", True)


def test_an_invalid_payload_raises_a_validation_error_before_anything_runs() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    ran: list[object] = []

    with pytest.raises(ValidationError):
        _shell(ran.append, publisher, progress)({"conversation_id": "c1"})

    assert ran == []
    assert progress.events == []
    assert publisher.published == []


def test_a_failing_handler_publishes_nothing_and_does_not_mark_success() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    job = make_post_call_job()

    def handler(_message: PostCallJobData) -> list[Contract]:
        raise TransientError("vendor 503")

    with pytest.raises(TransientError):
        _shell(handler, publisher, progress)(job.model_dump(mode="json"))

    assert publisher.published == []
    assert progress.events == [("started", job.job_id, "fetch_transcript")]


def test_a_throttled_step_runs_its_handler_inside_the_slot() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    log: list[str] = []

    def handler(_message: PostCallJobData) -> list[Contract]:
        log.append("handler")
        return [make_transcribed()]

    shell = _shell(handler, publisher, progress, throttle=RecordingThrottle(log))
    shell(make_post_call_job().model_dump(mode="json"))

    assert log == ["slot taken", "handler", "slot released"]
    assert [type(e) for e in publisher.published] == [Envelope]


def test_the_shell_validates_into_its_own_contract_type() -> None:
    publisher, progress = InMemoryPublisher(), RecordingProgress()
    received: list[object] = []

    def handler(message: CallTranscribed) -> list[Contract]:
        received.append(message)
        return []

    shell = StepShell(
        step="analyze_call",
        contract=CallTranscribed,
        handler=handler,
        publisher=publisher,
        progress=progress,
    )

    shell(make_transcribed().model_dump(mode="json"))

    assert received == [make_transcribed()]


@dataclass
class FakeMessage:
    actor_name: str
    options: dict[str, object]


def test_the_failure_hook_reports_to_the_job_named_in_the_message_options() -> None:
    progress = RecordingProgress()
    hook = progress_on_failure(progress)

    hook(FakeMessage("analyze_call", {"job_id": "j1"}), TransientError("503"), False)
    hook(FakeMessage("analyze_call", {"job_id": "j1"}), TransientError("503"), True)
    hook(FakeMessage("analyze_call", {}), TransientError("503"), True)

    assert progress.events == [
        ("failed", "j1", "analyze_call", "TransientError: 503", False),
        ("failed", "j1", "analyze_call", "TransientError: 503", True),
    ]
