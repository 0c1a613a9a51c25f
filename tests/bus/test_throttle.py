"""Throttle and Throttles: distributed slots on a real Redis; a timeout yields False."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from contracts.errors import PermanentError, TransientError
from infra.bus.throttle import Throttle, Throttles


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _unreachable_client() -> redis.Redis:
    # No retries: the refused connection should fail the call at once.
    return redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def _fail_inside(slot: AbstractContextManager[bool], seen: list[bool]) -> None:
    # A step whose vendor call fails while it holds (or was refused) its slot.
    with slot as held:
        seen.append(held)
        raise PermanentError("vendor said 400")


def _throttle(client: redis.Redis, **options: float) -> Throttle:
    settings: dict[str, float] = {"concurrency": 2, "rate_per_s": 100, "wait_timeout_s": 5.0}
    settings.update(options)
    return Throttle(
        client,
        f"sbtest:throttle:{uuid.uuid4().hex[:8]}",
        concurrency=int(settings["concurrency"]),
        rate_per_s=int(settings["rate_per_s"]),
        wait_timeout_s=settings["wait_timeout_s"],
        lease_s=settings.get("lease_s", 60.0),
    )


def test_no_more_than_the_concurrency_limit_hold_a_slot_at_once(client: redis.Redis) -> None:
    throttle = _throttle(client, concurrency=2)
    lock = threading.Lock()
    holding, peak, done = 0, 0, 0
    held: list[bool] = []

    def work() -> None:
        nonlocal holding, peak, done
        with throttle.slot() as slot:
            with lock:
                held.append(slot)
                holding += 1
                peak = max(peak, holding)
            time.sleep(0.1)
            with lock:
                holding -= 1
                done += 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert done == 6
    assert peak == 2
    assert held == [True] * 6


def test_no_more_than_the_rate_limit_start_in_one_second(client: redis.Redis) -> None:
    throttle = _throttle(client, concurrency=10, rate_per_s=3)
    held: list[bool] = []
    start = time.monotonic()
    for _ in range(6):
        with throttle.slot() as slot:
            held.append(slot)
    elapsed = time.monotonic() - start

    # Tokens 4-6 must wait for tokens 1-3 to leave the one-second window.
    assert elapsed >= 0.95
    assert held == [True] * 6


def test_waiting_longer_than_the_timeout_yields_false_holding_nothing(
    client: redis.Redis,
) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=0.3)
    with throttle.slot() as first:
        start = time.monotonic()
        with throttle.slot() as second:
            waited = time.monotonic() - start
            holders_inside = client.zcard(throttle.slots_key)
        holders_after = client.zcard(throttle.slots_key)

    assert (first, second) == (True, False)
    assert 0.3 <= waited < 1.5
    assert holders_inside == holders_after == 1  # only the first block's slot
    assert client.zcard(throttle.slots_key) == 0


def test_a_block_told_false_may_raise_and_releases_nothing_it_did_not_take(
    client: redis.Redis,
) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=0.05)
    assert throttle.try_acquire("other-holder")

    seen: list[bool] = []
    with pytest.raises(PermanentError, match="400"):
        _fail_inside(throttle.slot(), seen)

    assert seen == [False]
    assert client.zrange(throttle.slots_key, 0, -1) == [b"other-holder"]


def test_a_slot_is_released_when_the_block_raises(client: redis.Redis) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=0.3)
    with pytest.raises(PermanentError), throttle.slot():
        raise PermanentError("vendor said 400")

    with throttle.slot() as held:
        assert held is True
        assert client.zcard(throttle.slots_key) == 1
    assert client.zcard(throttle.slots_key) == 0


def test_a_slot_held_by_a_killed_process_frees_itself_when_its_lease_ends(
    client: redis.Redis,
) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=2.0, lease_s=0.3)
    assert throttle.try_acquire("killed-holder")  # never released

    start = time.monotonic()
    with throttle.slot() as held:
        waited = time.monotonic() - start

    assert held is True
    assert 0.1 <= waited < 1.5


def test_an_unreachable_redis_raises_a_transient_error() -> None:
    client = _unreachable_client()
    throttle = Throttle(client, "k", concurrency=1, rate_per_s=1, wait_timeout_s=1)
    try:
        with pytest.raises(TransientError, match="unreachable"), throttle.slot():
            pass
    finally:
        client.close()


# --- Throttles: every slot or none ----------------------------------------------------------


def test_throttles_hold_a_slot_of_each_while_the_block_runs(client: redis.Redis) -> None:
    openai, pinecone = _throttle(client), _throttle(client)

    with Throttles([openai, pinecone]).slot() as held:
        holders = (client.zcard(openai.slots_key), client.zcard(pinecone.slots_key))

    assert held is True
    assert holders == (1, 1)
    assert (client.zcard(openai.slots_key), client.zcard(pinecone.slots_key)) == (0, 0)


def test_throttles_give_back_the_slots_taken_when_a_later_one_is_full(
    client: redis.Redis,
) -> None:
    openai = _throttle(client, concurrency=1)
    pinecone = _throttle(client, concurrency=1, wait_timeout_s=0.2)
    assert pinecone.try_acquire("other-worker")

    start = time.monotonic()
    with Throttles([openai, pinecone]).slot() as held:
        waited = time.monotonic() - start
        inside = (client.zcard(openai.slots_key), client.zrange(pinecone.slots_key, 0, -1))

    assert held is False
    assert 0.2 <= waited < 1.5
    assert inside == (0, [b"other-worker"])  # the openai slot was released before the block
    with openai.slot() as free_again:
        assert free_again is True


def test_throttles_take_nothing_after_the_first_full_one(client: redis.Redis) -> None:
    openai = _throttle(client, concurrency=1, wait_timeout_s=0.1)
    pinecone = _throttle(client, concurrency=1)
    assert openai.try_acquire("other-worker")

    with Throttles([openai, pinecone]).slot() as held:
        inside = client.zcard(pinecone.slots_key)

    assert held is False
    assert inside == 0
    assert client.zrange(openai.slots_key, 0, -1) == [b"other-worker"]


def test_throttles_release_every_slot_when_the_block_raises(client: redis.Redis) -> None:
    openai, pinecone = _throttle(client), _throttle(client)

    seen: list[bool] = []
    with pytest.raises(PermanentError, match="400"):
        _fail_inside(Throttles([openai, pinecone]).slot(), seen)

    assert seen == [True]
    assert (client.zcard(openai.slots_key), client.zcard(pinecone.slots_key)) == (0, 0)


def test_throttles_release_the_slots_taken_when_a_later_redis_is_unreachable(
    client: redis.Redis,
) -> None:
    openai = _throttle(client)
    unreachable = _unreachable_client()
    pinecone = Throttle(unreachable, "pinecone", concurrency=1, rate_per_s=1, wait_timeout_s=1)
    try:
        with (
            pytest.raises(TransientError, match="unreachable"),
            Throttles([openai, pinecone]).slot(),
        ):
            pytest.fail("the block must not run")
    finally:
        unreachable.close()

    assert client.zcard(openai.slots_key) == 0
