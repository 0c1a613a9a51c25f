"""A job another Python service publishes with the README's code, on a real Redis.

The README ("Contracts for other services") shows how a service publishes with Dramatiq
or with redis alone. These tests run its code blocks as written: what they store is
byte for byte what Switchboard's own publisher stores (message ids and timestamp
aside), and Switchboard's real worker runs the job through every step, without the
job view intake would have given it.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from actors.pipelines import post_call
from actors.worker import compose
from contracts import PostCallJobData
from contracts.messages import contract_by_name
from infra.bus.broker import build_broker
from infra.bus.dead_letters import DeadLetter, DeadLetters
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import messages_key, queue_depths
from infra.settings import BrokerSettings, Settings, StepSettings, WorkerSettings
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.job_views import SqlJobQueries
from infra.store.progress import SqlJobProgress
from infra.store.tenants import SqlTenantDirectory
from tests.builders import make_analysis, make_post_call_job
from tests.fakes import FakeEmbedder, FakeTranscriptSource, FixedAnalyzer, InMemoryVectorIndex

pytestmark = pytest.mark.redis

README = Path(__file__).parents[2] / "README.md"
NAMESPACE = "switchboard"
"""The namespace the README's code publishes to: Switchboard's default."""

Publish = Callable[[str, dict[str, Any]], str]


def _readme_blocks() -> list[str]:
    text = README.read_text("utf-8")
    section = text[text.index("## Contracts for other services") :]
    section = section[: section.index("\n## ")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def _block(marker: str) -> str:
    (block,) = [b for b in _readme_blocks() if marker in b]
    return block


@pytest.fixture
def readme_publishers(redis_url: str) -> Iterator[dict[str, Publish]]:
    """The README's ``publish`` functions, with Dramatiq and with redis alone."""
    namespaces: list[dict[str, Any]] = []
    publishers: dict[str, Publish] = {}
    for kind, marker in (("dramatiq", "RedisBroker("), ("redis", "pipe.hset(")):
        names: dict[str, Any] = {"REDIS_URL": redis_url, "__name__": f"readme_{kind}"}
        # The README's code, run as written: that is what this test is about.
        exec(_block(marker), names)  # noqa: S102
        namespaces.append(names)
        publishers[kind] = names["publish"]
    yield publishers
    for names in namespaces:
        for value in names.values():
            client = value.client if isinstance(value, RedisBroker) else value
            if isinstance(client, redis.Redis):
                client.close()
                client.connection_pool.disconnect()


def test_the_readmes_example_payload_is_a_valid_post_call_job() -> None:
    published: list[PostCallJobData] = []

    def publish(name: str, payload: dict[str, Any]) -> str:
        job = contract_by_name(name, payload)
        assert isinstance(job, PostCallJobData)
        published.append(job)
        return job.job_id

    exec(_block('"conversation_id": "conv_123"'), {"publish": publish})  # noqa: S102
    assert [job.conversation_id for job in published] == ["conv_123"]


def _stored(client: redis.Redis, queue: str) -> dict[str, bytes]:
    """Message id → the bytes stored for it in the queue's ``.msgs`` hash."""
    raw = client.hgetall(messages_key(NAMESPACE, queue))
    payloads = [data for data in raw.values() if isinstance(data, bytes)]
    return {json.loads(data)["message_id"]: data for data in payloads}


@pytest.mark.parametrize("kind", ["dramatiq", "redis"])
def test_the_readmes_code_stores_a_message_byte_for_byte_as_switchboards_publisher(
    kind: str, readme_publishers: dict[str, Publish], redis_url: str
) -> None:
    job = make_post_call_job()
    ours = BrokerPublisher(build_broker(BrokerSettings(namespace=NAMESPACE), redis_url))
    try:
        our_id = ours.publish(Envelope.of(job))
    finally:
        ours.close()
    their_id = readme_publishers[kind]("PostCallJobData", job.model_dump(mode="json"))

    client = redis.Redis.from_url(redis_url)
    try:
        stored = _stored(client, job.route.queue)
        assert client.lrange(f"{NAMESPACE}:{job.route.queue}", 0, -1) == [
            json.loads(stored[our_id])["options"]["redis_message_id"].encode(),
            json.loads(stored[their_id])["options"]["redis_message_id"].encode(),
        ]
    finally:
        client.close()
    theirs, mine = json.loads(stored[their_id]), json.loads(stored[our_id])
    as_theirs = stored[our_id]
    for old, new in (
        (mine["message_id"], theirs["message_id"]),
        (mine["options"]["redis_message_id"], theirs["options"]["redis_message_id"]),
        (str(mine["message_timestamp"]), str(theirs["message_timestamp"])),
    ):
        as_theirs = as_theirs.replace(old.encode(), new.encode())
    assert as_theirs == stored[their_id]


@contextmanager
def _switchboard_worker(
    tmp_path: Path, redis_url: str, engine: sa.Engine
) -> Iterator[tuple[SqlCallStore, redis.Redis]]:
    """Switchboard's worker, composed as its root does, on the post-call pipeline.

    Vendors are fakes; the calls are stored in the SQL store.
    """
    store = SqlCallStore(engine)
    ports = post_call.PostCallPorts(
        transcripts=FakeTranscriptSource(),
        analyzer=FixedAnalyzer(make_analysis()),
        embedder=FakeEmbedder(),
        vectors=InMemoryVectorIndex(),
        calls=store,
        callbacks=store,
        now=lambda: datetime(2026, 3, 1, tzinfo=UTC),
    )
    settings = Settings(
        data_dir=tmp_path,
        broker=BrokerSettings(
            namespace=NAMESPACE, heartbeat_timeout_ms=2_000, maintenance_interval_s=0.3
        ),
        steps=StepSettings(min_backoff_ms=10, max_backoff_ms=50, throttle_wait_s=0.05),
        worker=WorkerSettings(prometheus_port=0),
    )
    broker = compose(
        settings,
        redis_url,
        steps=post_call.PIPELINE.bind(ports),
        progress=SqlJobProgress(engine),
    )
    worker = Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        yield store, broker.client
    finally:
        worker.stop(timeout=5_000)
        broker.close()


def _wait_until(predicate: Callable[[], object], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the job did not get there in time"
        time.sleep(0.05)


def test_a_job_another_service_published_runs_every_step_but_has_no_job_view(
    tmp_path: Path,
    redis_url: str,
    sqlite_engine: sa.Engine,
    readme_publishers: dict[str, Publish],
) -> None:
    tenant, _ = SqlTenantDirectory(sqlite_engine).add_tenant("acme")
    jobs = {
        kind: make_post_call_job(
            tenant_id=tenant.id, job_id=uuid.uuid4().hex, conversation_id=f"conv_{kind}"
        )
        for kind in readme_publishers
    }
    with _switchboard_worker(tmp_path, redis_url, sqlite_engine) as (store, client):
        for kind, job in jobs.items():
            readme_publishers[kind]("PostCallJobData", job.model_dump(mode="json"))
        _wait_until(
            lambda: all(store.get_call_log(tenant.id, j.conversation_id) for j in jobs.values())
        )
        depths = queue_depths(
            client, NAMESPACE, [s.contract.route.queue for s in post_call.PIPELINE.steps]
        )

    for job in jobs.values():
        log = store.get_call_log(tenant.id, job.conversation_id)
        assert log is not None
        assert (log.job_id, log.analysis) == (job.job_id, make_analysis())
        # Intake never recorded the job: the worker records no progress for it, and
        # neither the job view nor the call view (which reads the job) finds it.
        assert SqlJobQueries(sqlite_engine).job_view(job.job_id, tenant_id=None) is None
        assert SqlCallQueries(sqlite_engine).find_calls(job.conversation_id, tenant_id=None) == []
    assert all(depth.dead == depth.ready == 0 for depth in depths.values())


def test_a_job_for_a_tenant_switchboard_does_not_have_dies_at_persist_call(
    tmp_path: Path,
    redis_url: str,
    sqlite_engine: sa.Engine,
    readme_publishers: dict[str, Publish],
) -> None:
    job = make_post_call_job(tenant_id="no_such_tenant", job_id=uuid.uuid4().hex)
    letters: list[DeadLetter] = []

    def recorded() -> bool:
        letters[:] = DeadLetters(client, NAMESPACE).list()
        return bool(letters) and letters[0].failure is not None

    with _switchboard_worker(tmp_path, redis_url, sqlite_engine) as (_, client):
        readme_publishers["dramatiq"]("PostCallJobData", job.model_dump(mode="json"))
        _wait_until(recorded)

    (letter,) = letters
    assert (letter.queue, letter.actor) == ("calls.persist", "persist_call")
    assert letter.failure is not None
    assert (letter.failure.exception_type, letter.failure.attempts) == ("PermanentError", 1)
    assert letter.failure.options["job_id"] == job.job_id
    assert SqlJobQueries(sqlite_engine).job_view(job.job_id, tenant_id=None) is None
