"""The job spine on a real Redis and a real Dramatiq worker: pipelines, fan-out, deferral.

Each test binds pipelines to fake ports, composes the worker's broker exactly as the
worker root does (``actors.worker.compose``), runs a real ``dramatiq.Worker`` and reads
the job's progress back from the SQL store (SQLite) the shells wrote it to.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from dramatiq import Worker
from pydantic import Field, SecretStr

from actors.pipeline import BoundStep, Handler, Pipeline, Step
from actors.pipelines import post_call
from actors.worker import compose
from contracts import Contract, Route, TranscriptTurn
from contracts.errors import PermanentError
from contracts.values import ConversationSnapshot
from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.bus.log_filters import RedactMessages
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import QueueDepth, queue_depths
from infra.bus.throttle import Throttle
from infra.logs import configure_logging
from infra.settings import (
    ActorOverride,
    BrokerSettings,
    OpenAISettings,
    Settings,
    StepSettings,
    WorkerSettings,
)
from infra.sockets import free_port
from infra.store.engine import create_engine
from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.progress import SqlJobProgress
from infra.store.records import ChildCounts, JobView
from infra.store.tenants import SqlTenantDirectory
from infra.vendors.openai_llm import OpenAIAnalyzer, build_openai_client
from tests.actors.test_registry import bound_steps
from tests.builders import (
    STARTED_AT,
    make_analysis,
    make_callback,
    make_inbox_entry,
    make_post_call_job,
    make_transcript,
)
from tests.fakes import (
    FakeEmbedder,
    FakeTranscriptSource,
    FixedAnalyzer,
    FixedClock,
    InMemoryCallStore,
    InMemoryVectorIndex,
)

pytestmark = pytest.mark.redis


@dataclass
class Spine:
    """A migrated SQLite store with one tenant."""

    engine: sa.Engine
    tenant_id: str

    def accept(self, contract: Contract, kind: str) -> str:
        SqlJobLedger(self.engine).accept(make_inbox_entry(contract, kind=kind))
        return contract.job_id

    def view(self, job_id: str) -> JobView:
        view = SqlJobQueries(self.engine).job_view(job_id, tenant_id=None)
        assert view is not None
        return view


@pytest.fixture
def spine(tmp_path: Path) -> Iterator[Spine]:
    url = f"sqlite:///{tmp_path / 'spine.db'}"
    upgrade(url)
    engine = create_engine(url)
    tenant, _ = SqlTenantDirectory(engine).add_tenant("acme")
    try:
        yield Spine(engine, tenant.id)
    finally:
        engine.dispose()


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "data_dir": tmp_path,
        "broker": BrokerSettings(
            namespace=f"sbtest-{uuid.uuid4().hex[:8]}",
            heartbeat_timeout_ms=2_000,
            maintenance_interval_s=0.3,
        ),
        "steps": StepSettings(min_backoff_ms=10, max_backoff_ms=50, throttle_wait_s=0.05),
        "worker": WorkerSettings(prometheus_port=0),
    }
    return Settings(**(fields | overrides))


def _wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the jobs did not get there in time"
        time.sleep(0.05)


@contextmanager
def _worker(
    settings: Settings, redis_url: str, steps: Sequence[BoundStep], spine: Spine
) -> Iterator[SwitchboardBroker]:
    broker = compose(settings, redis_url, steps=steps, progress=SqlJobProgress(spine.engine))
    worker = Worker(broker, worker_timeout=50, worker_threads=4)
    worker.start()
    try:
        yield broker
    finally:
        worker.stop(timeout=5_000)
        broker.close()


def _post_call_steps(**ports: Any) -> list[BoundStep]:
    """Both real pipelines on fakes; keyword arguments replace post-call ports by name."""
    store = InMemoryCallStore()
    defaults: dict[str, Any] = {
        "transcripts": FakeTranscriptSource(),
        "analyzer": FixedAnalyzer(make_analysis()),
        "embedder": FakeEmbedder(),
        "vectors": InMemoryVectorIndex(),
        "calls": store,
        "callbacks": store,
        "now": FixedClock(STARTED_AT),
    }
    health = [s for s in bound_steps() if s.pipeline == "health_check"]
    return [*post_call.PIPELINE.bind(post_call.PostCallPorts(**(defaults | ports))), *health]


def test_a_post_call_job_runs_through_every_step_and_completes(
    tmp_path: Path, redis_url: str, spine: Spine
) -> None:
    store = InMemoryCallStore()
    analysis = make_analysis(callback=make_callback())
    steps = _post_call_steps(analyzer=FixedAnalyzer(analysis), calls=store, callbacks=store)
    job = make_post_call_job(tenant_id=spine.tenant_id)
    spine.accept(job, "post_call")

    with _worker(_settings(tmp_path), redis_url, steps, spine) as broker:
        BrokerPublisher(broker).publish(Envelope.of(job))
        _wait_until(lambda: spine.view(job.job_id).status == "completed")
        depths = queue_depths(broker.client, broker.namespace, sorted(broker.queues))

    view = spine.view(job.job_id)
    assert [(s.name, s.status, s.attempts) for s in view.steps] == [
        ("fetch_transcript", "completed", 1),
        ("analyze_call", "completed", 1),
        ("index_call", "completed", 1),
        ("persist_call", "completed", 1),
        ("schedule_callback", "completed", 1),
    ]
    assert view.children == ChildCounts(total=4, completed=4, failed=0, outstanding=0)
    key = (spine.tenant_id, job.conversation_id)
    assert store.call_logs[key].analysis == analysis
    assert store.callbacks[key].due_at == make_callback().due_at
    assert set(depths.values()) == {QueueDepth(ready=0, delayed=0, dead=0, in_flight=0)}


def test_a_transcript_not_ready_yet_is_retried_and_the_retry_shows_in_the_job(
    tmp_path: Path, redis_url: str, spine: Spine
) -> None:
    job = make_post_call_job(tenant_id=spine.tenant_id, transcript=None)
    transcripts = FakeTranscriptSource()
    transcripts.script(
        job.conversation_id,
        ConversationSnapshot(conversation_id=job.conversation_id, status="processing"),
        ConversationSnapshot(
            conversation_id=job.conversation_id, status="done", transcript=make_transcript()
        ),
    )
    spine.accept(job, "post_call")

    with _worker(
        _settings(tmp_path), redis_url, _post_call_steps(transcripts=transcripts), spine
    ) as broker:
        BrokerPublisher(broker).publish(Envelope.of(job))
        _wait_until(lambda: spine.view(job.job_id).status == "completed")

    first = spine.view(job.job_id).steps[0]
    assert (first.name, first.status, first.attempts) == ("fetch_transcript", "completed", 2)
    assert transcripts.fetches == [job.conversation_id, job.conversation_id]


def test_a_transcript_not_ready_yet_is_one_log_line_without_a_traceback(
    tmp_path: Path, redis_url: str, spine: Spine, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"), process="worker", filters=[RedactMessages()])
    job = make_post_call_job(tenant_id=spine.tenant_id, transcript=None)
    transcripts = FakeTranscriptSource()
    transcripts.script(
        job.conversation_id,
        ConversationSnapshot(conversation_id=job.conversation_id, status="processing"),
        ConversationSnapshot(
            conversation_id=job.conversation_id, status="done", transcript=make_transcript()
        ),
    )
    spine.accept(job, "post_call")

    with _worker(
        _settings(tmp_path), redis_url, _post_call_steps(transcripts=transcripts), spine
    ) as broker:
        BrokerPublisher(broker).publish(Envelope.of(job))
        _wait_until(lambda: spine.view(job.job_id).status == "completed")

    logged = capsys.readouterr().err
    lines = [json.loads(line) for line in logged.splitlines()]
    assert "Traceback" not in logged
    [not_ready] = [line for line in lines if "not 'done' yet" in json.dumps(line)]
    assert (not_ready["event"], not_ready["level"], not_ready["step"]) == (
        "expected failure",
        "info",
        "fetch_transcript",
    )
    assert not_ready["job_id"] == job.job_id
    assert [line for line in lines if line["level"] != "info"] == []
    assert spine.view(job.job_id).steps[0].attempts == 2


# A fan-out workflow of the test's own: one message becomes one child per user.


class FanOutJobData(Contract):
    """Command: call every user of the list."""

    route = Route(queue="test.fan_out", actor="fan_out")
    users: list[str] = Field(description="The users.")
    refuse: list[str] = Field(default_factory=list, description="Users whose call fails.")

    @property
    def idempotency_key(self) -> str:
        """One fan-out per job."""
        return f"fan-out:{self.job_id}"


class CallUser(Contract):
    """Command: call one user."""

    route = Route(queue="test.call_user", actor="call_user")
    user: str = Field(description="The user.")
    refuse: bool = Field(default=False, description="Whether the call fails.")

    @property
    def idempotency_key(self) -> str:
        """One call per user of the job."""
        return f"call-user:{self.job_id}:{self.user}"


@dataclass
class FanOutPorts:
    called: list[str]
    vendor: Any


def _fan_out(_ports: FanOutPorts) -> Handler[FanOutJobData]:
    def run(job: FanOutJobData) -> list[Contract]:
        common = {"job_id": job.job_id, "tenant_id": job.tenant_id}
        return [
            CallUser(
                **common, correlation_id=f"{job.correlation_id}.{u}", user=u, refuse=u in job.refuse
            )
            for u in job.users
        ]

    return run


def _call_user(ports: FanOutPorts) -> Handler[CallUser]:
    def run(command: CallUser) -> list[Contract]:
        if command.refuse:
            raise PermanentError(f"{command.user} refused the call")
        ports.called.append(command.user)
        return []

    return run


FAN_OUT = Pipeline(
    name="fan_out",
    steps=(
        Step(FanOutJobData, _fan_out),
        Step(CallUser, _call_user, vendors=lambda p: (p.vendor,)),
    ),
)


@dataclass
class _Vendor:
    vendor: str | None = None


def test_a_fan_out_job_completes_when_its_last_child_does(
    tmp_path: Path, redis_url: str, spine: Spine
) -> None:
    ports = FanOutPorts(called=[], vendor=_Vendor())
    users = [f"user_{n}" for n in range(12)]
    job = FanOutJobData(
        job_id="fan-1", tenant_id=spine.tenant_id, correlation_id="tick-1", users=users
    )
    spine.accept(job, "fan_out")

    with _worker(_settings(tmp_path), redis_url, FAN_OUT.bind(ports), spine) as broker:
        BrokerPublisher(broker).publish(Envelope.of(job))
        _wait_until(lambda: spine.view(job.job_id).status == "completed")

    view = spine.view(job.job_id)
    assert sorted(ports.called) == sorted(users)
    assert view.children == ChildCounts(total=12, completed=12, failed=0, outstanding=0)
    assert [(s.name, s.status, s.messages) for s in view.steps] == [
        ("fan_out", "completed", 1),
        ("call_user", "completed", 12),
    ]


def test_a_dead_child_fails_the_job_naming_its_dead_letter_until_it_is_replayed(
    tmp_path: Path, redis_url: str, spine: Spine
) -> None:
    ports = FanOutPorts(called=[], vendor=_Vendor())
    job = FanOutJobData(
        job_id="fan-2",
        tenant_id=spine.tenant_id,
        correlation_id="tick-2",
        users=["ada", "bob", "cy"],
        refuse=["bob"],
    )
    spine.accept(job, "fan_out")
    settings = _settings(tmp_path)

    with _worker(settings, redis_url, FAN_OUT.bind(ports), spine) as broker:
        BrokerPublisher(broker).publish(Envelope.of(job))
        _wait_until(
            lambda: (
                spine.view(job.job_id).status == "failed"
                and spine.view(job.job_id).children.outstanding == 0
            )
        )
        failed = spine.view(job.job_id)
        assert failed.failure is not None
        assert failed.failure.step == "call_user"
        assert failed.failure.error == "PermanentError: bob refused the call"
        assert failed.children == ChildCounts(total=3, completed=2, failed=1, outstanding=0)
        letter = DeadLetters(broker.client, settings.broker.namespace).get(
            str(failed.failure.dead_letter_id)
        )
        assert letter is not None
        assert letter.payload["user"] == "bob"

        # The fixed message is replayed under the same key: the job moves back, then completes.
        fixed = CallUser(
            job_id=job.job_id,
            tenant_id=spine.tenant_id,
            correlation_id="tick-2.bob",
            user="bob",
        )
        BrokerPublisher(broker).publish(Envelope.of(fixed))
        _wait_until(lambda: spine.view(job.job_id).status == "completed")

    assert sorted(ports.called) == ["ada", "bob", "cy"]
    assert spine.view(job.job_id).children == ChildCounts(3, 3, 0, 0)


def test_a_message_waiting_for_its_vendor_is_deferred_without_spending_a_retry(
    tmp_path: Path, redis_url: str, spine: Spine
) -> None:
    ports = FanOutPorts(called=[], vendor=_Vendor("openai"))
    job = FanOutJobData(
        job_id="fan-3", tenant_id=spine.tenant_id, correlation_id="tick-3", users=["ada"]
    )
    spine.accept(job, "fan_out")
    # No retries at all: a deferral that spent one would dead-letter the message.
    settings = _settings(
        tmp_path,
        openai=OpenAISettings(concurrency=1, rate_per_s=100),
        actors={"call_user": ActorOverride(max_retries=0)},
    )
    client = redis.Redis.from_url(redis_url)
    holder = Throttle(
        client,
        f"{settings.broker.namespace}:throttle:openai",
        concurrency=1,
        rate_per_s=100,
        wait_timeout_s=0,
    )
    assert holder.try_acquire("someone-else")
    try:
        with _worker(settings, redis_url, FAN_OUT.bind(ports), spine) as broker:
            BrokerPublisher(broker).publish(Envelope.of(job))
            time.sleep(1.5)
            waiting = spine.view(job.job_id)
            assert ports.called == []
            assert waiting.children.outstanding == 1
            holder.release("someone-else")
            _wait_until(lambda: spine.view(job.job_id).status == "completed", timeout_s=40)
    finally:
        client.close()

    call = spine.view(job.job_id).steps[1]
    assert (call.name, call.status, call.attempts, call.error) == (
        "call_user",
        "completed",
        1,
        None,
    )
    assert ports.called == ["ada"]


SECRET_WORDS = "my card number is 4111 1111 1111 1111"


def test_an_unreachable_vendor_costs_a_few_log_lines_and_never_logs_the_transcript(
    tmp_path: Path, redis_url: str, spine: Spine, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="console"), process="worker", filters=[RedactMessages()])
    unreachable = OpenAISettings(
        api_key=SecretStr("sk-test"),
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        timeout_s=1,
        max_retries=0,
    )
    analyzer = OpenAIAnalyzer(build_openai_client(unreachable), "gpt-4o-mini")
    transcript = [TranscriptTurn(role="user", message=SECRET_WORDS)]
    jobs = [
        make_post_call_job(
            tenant_id=spine.tenant_id,
            job_id=f"job_{n}",
            conversation_id=f"c_{n}",
            transcript=transcript,
        )
        for n in range(4)
    ]
    for job in jobs:
        spine.accept(job, "post_call")
    settings = _settings(
        tmp_path, steps=StepSettings(max_retries=3, min_backoff_ms=10, max_backoff_ms=20)
    )

    with _worker(settings, redis_url, _post_call_steps(analyzer=analyzer), spine) as broker:
        for job in jobs:
            BrokerPublisher(broker).publish(Envelope.of(job))
        _wait_until(lambda: all(spine.view(j.job_id).status == "failed" for j in jobs), 60)

    logged = capsys.readouterr().err
    assert SECRET_WORDS not in logged
    failures = [
        line for line in logged.splitlines() if "analyze_call" in line and "warning" in line
    ]
    # 4 calls x 4 attempts failed; the repeat limiter lets 3 through and counts the rest.
    assert 1 <= len(failures) <= 4, failures
    assert len(logged.splitlines()) < 60, logged
    failed = spine.view(jobs[0].job_id)
    assert failed.failure is not None
    assert failed.failure.step == "analyze_call"
    assert str(failed.failure.error).startswith("TransientError: OpenAI unavailable")
