"""The CheckpointReader port's contract: Redis (the only adapter) and the unit tests' fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from contracts import HealthAnswer
from contracts.errors import PermanentError, TransientError
from infra.vendors.checkpoints import RedisCheckpointReader, write_checkpoint
from tests.fakes import InMemoryCheckpoints

PREFIX = "checkpoint:"
ANSWERS = [
    HealthAnswer(question="blood_pressure", answer="130 over 85", value=130.0, unit="mmHg"),
    HealthAnswer(question="slept_well", answer="yes"),
]


@dataclass
class World:
    """A checkpoint reader and how the live-call service's side of it is seen.

    Attributes:
        reader: The adapter under test.
        write: Writes a thread's checkpoint, as the live-call service does.
        exists: Whether anything is still stored for a thread.
        client: The Redis behind the reader (None for the fake), to write raw hashes.
    """

    reader: RedisCheckpointReader | InMemoryCheckpoints
    write: Callable[[str, Sequence[HealthAnswer]], None]
    exists: Callable[[str], bool]
    client: redis.Redis | None = None


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(params=["redis", "fake"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        fake = InMemoryCheckpoints()
        return World(fake, fake.put, lambda thread_id: thread_id in fake.threads)
    client: redis.Redis = request.getfixturevalue("client")

    def write(thread_id: str, answers: Sequence[HealthAnswer]) -> None:
        write_checkpoint(client, key_prefix=PREFIX, thread_id=thread_id, answers=answers)

    return World(
        RedisCheckpointReader(client, PREFIX),
        write,
        lambda thread_id: client.exists(f"{PREFIX}{thread_id}") == 1,
        client,
    )


def test_written_answers_are_read_back(world: World) -> None:
    world.write("thread-1", ANSWERS)

    assert world.reader.read_answers("thread-1") == ANSWERS


def test_write_checkpoint_marks_the_thread_completed_with_its_time(client: redis.Redis) -> None:
    write_checkpoint(client, key_prefix=PREFIX, thread_id="thread-1", answers=ANSWERS)

    assert client.hget(f"{PREFIX}thread-1", "status") == b"completed"
    assert client.hexists(f"{PREFIX}thread-1", "updated_at")


def test_a_missing_checkpoint_reads_as_none(world: World) -> None:
    assert world.reader.read_answers("never-written") is None


def test_delete_removes_the_thread_and_tolerates_a_second_delete(world: World) -> None:
    world.write("thread-2", ANSWERS)
    world.write("thread-other", ANSWERS)

    world.reader.delete("thread-2")
    world.reader.delete("thread-2")

    assert world.reader.read_answers("thread-2") is None
    assert not world.exists("thread-2")
    assert world.reader.read_answers("thread-other") == ANSWERS


@pytest.mark.parametrize(
    "fields",
    [
        {"answers": "not json"},
        {"answers": '[{"question": "q"}]'},
        {"status": "in-progress"},
    ],
)
def test_a_malformed_checkpoint_is_a_permanent_error(world: World, fields: dict[str, str]) -> None:
    if world.client is None:
        pytest.skip("the fake stores parsed answers: a malformed checkpoint cannot be written")
    for name, value in fields.items():
        world.client.hset(f"{PREFIX}thread-3", name, value)

    with pytest.raises(PermanentError):
        world.reader.read_answers("thread-3")


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
