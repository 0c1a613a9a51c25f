from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from contracts.errors import TransientError
from infra.lease import RedisLease

KEY = "switchboard:scheduler:leader"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        yield client
    finally:
        client.close()


def test_only_one_holder_acquires_the_lease(client: redis.Redis) -> None:
    first, second = RedisLease(client, KEY, 5), RedisLease(client, KEY, 5)
    assert first.acquire() is True
    assert second.acquire() is False
    assert client.get(KEY) == first.token.encode()


def test_the_holder_renews_its_lease(client: redis.Redis) -> None:
    lease = RedisLease(client, KEY, 2)
    assert lease.acquire()
    client.pexpire(KEY, 100)
    assert lease.acquire() is True
    assert client.pttl(KEY) > 1000


def test_release_frees_the_lease_for_another_holder(client: redis.Redis) -> None:
    first, second = RedisLease(client, KEY, 5), RedisLease(client, KEY, 5)
    assert first.acquire()
    first.release()
    assert client.exists(KEY) == 0
    assert second.acquire() is True


def test_release_leaves_another_holders_lease_alone(client: redis.Redis) -> None:
    first, second = RedisLease(client, KEY, 5), RedisLease(client, KEY, 5)
    assert first.acquire()
    second.release()
    assert client.get(KEY) == first.token.encode()


def test_an_expired_lease_passes_to_another_holder_and_the_old_one_cannot_renew(
    client: redis.Redis,
) -> None:
    first, second = RedisLease(client, KEY, 0.2), RedisLease(client, KEY, 5)
    assert first.acquire()
    deadline = time.monotonic() + 5
    while client.exists(KEY) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second.acquire() is True
    assert first.acquire() is False
    first.release()
    assert client.get(KEY) == second.token.encode()


def test_connect_builds_a_lease_on_its_own_client(redis_url: str) -> None:
    lease = RedisLease.connect(redis_url, KEY, 5)
    try:
        assert lease.acquire()
        lease.release()
    finally:
        lease.close()


def test_an_unreachable_redis_is_a_transient_error() -> None:
    lease = RedisLease.connect("redis://127.0.0.1:1/0", KEY, 5, socket_timeout_s=0.5)
    try:
        with pytest.raises(TransientError, match="cannot acquire lease"):
            lease.acquire()
    finally:
        lease.close()


def test_a_non_positive_ttl_is_rejected(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="positive"):
        RedisLease(client, KEY, 0)


def test_held_says_whether_the_last_acquire_won_and_its_ttl_has_not_run_out(
    client: redis.Redis,
) -> None:
    now = [1000.0]
    first = RedisLease(client, KEY, 5, timer=lambda: now[0])
    second = RedisLease(client, KEY, 5, timer=lambda: now[0])
    assert (first.held, second.held) == (False, False)

    assert (first.acquire(), second.acquire()) == (True, False)
    assert (first.held, second.held) == (True, False)
    now[0] += 4.9
    assert first.held
    now[0] += 0.2  # not renewed in time: it may have been taken over
    assert not first.held

    assert first.acquire()
    first.release()
    assert not first.held
