"""The real registered actors on a real Redis and a real Dramatiq worker, over fake ports."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dramatiq import Worker

from actors.registry import WorkerPorts
from actors.worker import compose
from contracts.values import ConversationSnapshot, summary_vector_id, tenant_namespace
from infra.bus.broker import SwitchboardBroker
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import QueueDepth, queue_depths
from infra.settings import BrokerSettings, Settings, StepSettings, WorkerSettings
from tests.actors.test_registry import fake_ports
from tests.actors.test_shell import RecordingProgress
from tests.builders import (
    CONVERSATION_ID,
    JOB_ID,
    TENANT_ID,
    make_analysis,
    make_callback,
    make_post_call_job,
    make_transcript,
)
from tests.fakes import FakeTranscriptSource, FixedAnalyzer, InMemoryCallStore


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        broker=BrokerSettings(
            namespace=f"sbtest-{uuid.uuid4().hex[:8]}",
            heartbeat_timeout_ms=2_000,
            maintenance_interval_s=0.3,
        ),
        steps=StepSettings(min_backoff_ms=10, max_backoff_ms=50),
        worker=WorkerSettings(prometheus_port=0),
    )


def _wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the pipeline did not finish in time"
        time.sleep(0.05)


@contextmanager
def _worker(
    tmp_path: Path, redis_url: str, ports: WorkerPorts, progress: RecordingProgress
) -> Iterator[SwitchboardBroker]:
    broker = compose(_settings(tmp_path), redis_url, ports=ports, progress=progress)
    worker = Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        yield broker
    finally:
        worker.stop(timeout=5_000)
        broker.close()


def test_a_post_call_job_runs_through_every_step_to_a_scheduled_callback(
    tmp_path: Path, redis_url: str
) -> None:
    ports = fake_ports()
    analysis = make_analysis(callback=make_callback())
    ports = WorkerPorts(**{**ports.__dict__, "analyzer": FixedAnalyzer(analysis)})
    store = ports.calls
    assert isinstance(store, InMemoryCallStore)
    progress = RecordingProgress()

    with _worker(tmp_path, redis_url, ports, progress) as broker:
        BrokerPublisher(broker).publish(Envelope.of(make_post_call_job()))
        _wait_until(lambda: ("succeeded", JOB_ID, "schedule_callback", True) in progress.events)
        depths = queue_depths(broker.client, broker.namespace, sorted(broker.queues))

    assert store.call_logs[CONVERSATION_ID].analysis == analysis
    assert store.callbacks[CONVERSATION_ID].due_at == make_callback().due_at
    namespace = tenant_namespace(TENANT_ID)
    assert ports.vectors.fetch(namespace, [summary_vector_id(CONVERSATION_ID)])
    steps = [event[2] for event in progress.events if event[0] == "succeeded"]
    assert steps == [
        "fetch_transcript",
        "analyze_call",
        "index_call",
        "persist_call",
        "schedule_callback",
    ]
    assert set(depths.values()) == {QueueDepth(ready=0, delayed=0, dead=0, in_flight=0)}


def test_a_transcript_not_ready_yet_is_retried_and_the_failure_reported_to_progress(
    tmp_path: Path, redis_url: str
) -> None:
    transcripts = FakeTranscriptSource()
    transcripts.script(
        CONVERSATION_ID,
        ConversationSnapshot(conversation_id=CONVERSATION_ID, status="processing"),
        ConversationSnapshot(
            conversation_id=CONVERSATION_ID, status="done", transcript=make_transcript()
        ),
    )
    ports = WorkerPorts(**{**fake_ports().__dict__, "transcripts": transcripts})
    progress = RecordingProgress()

    with _worker(tmp_path, redis_url, ports, progress) as broker:
        BrokerPublisher(broker).publish(Envelope.of(make_post_call_job(transcript=None)))
        _wait_until(lambda: ("succeeded", JOB_ID, "persist_call", True) in progress.events)

    failures = [event for event in progress.events if event[0] == "failed"]
    assert len(failures) == 1
    _, job_id, step, error, dead = failures[0]
    assert (job_id, step, dead) == (JOB_ID, "fetch_transcript", False)
    assert str(error).startswith("NotReadyError: ")
    assert transcripts.fetches == [CONVERSATION_ID, CONVERSATION_ID]
