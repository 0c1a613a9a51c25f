"""The CheckpointReader port's contract, on a real Redis (the only adapter)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from contracts import HealthAnswer
from contracts.errors import PermanentError, TransientError
from infra.vendors.checkpoints import RedisCheckpointReader, write_checkpoint

PREFIX = "checkpoint:"
ANSWERS = [
    HealthAnswer(question="blood_pressure", answer="130 over 85", value=130.0, unit="mmHg"),
    HealthAnswer(question="slept_well", answer="yes"),
]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def reader(client: redis.Redis) -> RedisCheckpointReader:
    return RedisCheckpointReader(client, PREFIX)


def test_written_answers_are_read_back(client: redis.Redis, reader: RedisCheckpointReader) -> None:
    write_checkpoint(client, key_prefix=PREFIX, thread_id="thread-1", answers=ANSWERS)

    assert reader.read_answers("thread-1") == ANSWERS
    assert client.hget(f"{PREFIX}thread-1", "status") == b"completed"
    assert client.hexists(f"{PREFIX}thread-1", "updated_at")


def test_a_missing_checkpoint_reads_as_none(reader: RedisCheckpointReader) -> None:
    assert reader.read_answers("never-written") is None


def test_delete_removes_the_thread_and_tolerates_a_second_delete(
    client: redis.Redis, reader: RedisCheckpointReader
) -> None:
    write_checkpoint(client, key_prefix=PREFIX, thread_id="thread-2", answers=ANSWERS)

    reader.delete("thread-2")
    reader.delete("thread-2")

    assert reader.read_answers("thread-2") is None
    assert client.exists(f"{PREFIX}thread-2") == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"answers": "not json"},
        {"answers": '[{"question": "q"}]'},
        {"status": "in-progress"},
    ],
)
def test_a_malformed_checkpoint_is_a_permanent_error(
    client: redis.Redis, reader: RedisCheckpointReader, fields: dict[str, str]
) -> None:
    for name, value in fields.items():
        client.hset(f"{PREFIX}thread-3", name, value)

    with pytest.raises(PermanentError):
        reader.read_answers("thread-3")


def test_an_unreachable_redis_is_a_transient_error() -> None:
    # Port 1 on loopback refuses connections at once.
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    reader = RedisCheckpointReader(unreachable, PREFIX)
    try:
        with pytest.raises(TransientError):
            reader.read_answers("thread-4")
        with pytest.raises(TransientError):
            reader.delete("thread-4")
    finally:
        unreachable.close()
