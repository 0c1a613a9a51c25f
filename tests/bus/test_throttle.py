from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from contracts.errors import PermanentError, TransientError
from infra.bus.throttle import Throttle


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


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

    def work() -> None:
        nonlocal holding, peak, done
        with throttle.slot():
            with lock:
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


def test_no_more_than_the_rate_limit_start_in_one_second(client: redis.Redis) -> None:
    throttle = _throttle(client, concurrency=10, rate_per_s=3)
    start = time.monotonic()
    for _ in range(6):
        with throttle.slot():
            pass
    elapsed = time.monotonic() - start

    # Tokens 4-6 must wait for tokens 1-3 to leave the one-second window.
    assert elapsed >= 0.95


def test_waiting_longer_than_the_timeout_raises_a_transient_error(client: redis.Redis) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=0.3)
    with throttle.slot():
        start = time.monotonic()
        with pytest.raises(TransientError, match="no slot"), throttle.slot():
            pass
        waited = time.monotonic() - start

    assert 0.3 <= waited < 1.5


def test_a_slot_is_released_when_the_block_raises(client: redis.Redis) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=0.3)
    with pytest.raises(PermanentError), throttle.slot():
        raise PermanentError("vendor said 400")

    with throttle.slot():
        assert client.zcard(throttle.slots_key) == 1
    assert client.zcard(throttle.slots_key) == 0


def test_a_slot_held_by_a_killed_process_frees_itself_when_its_lease_ends(
    client: redis.Redis,
) -> None:
    throttle = _throttle(client, concurrency=1, wait_timeout_s=2.0, lease_s=0.3)
    assert throttle.try_acquire("killed-holder")  # never released

    start = time.monotonic()
    with throttle.slot():
        pass

    assert 0.1 <= time.monotonic() - start < 1.5


def test_an_unreachable_redis_raises_a_transient_error() -> None:
    # No retries: the refused connection should fail the call at once.
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    throttle = Throttle(client, "k", concurrency=1, rate_per_s=1, wait_timeout_s=1)
    try:
        with pytest.raises(TransientError, match="unreachable"), throttle.slot():
            pass
    finally:
        client.close()
