from __future__ import annotations

import time

import redis
from prometheus_client import REGISTRY

from contracts.errors import TransientError
from infra.lease import RedisLease
from infra.settings import SchedulerSettings
from scheduler.main import LeaderTick, build_scheduler


class Work:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return 7


def test_only_the_lease_holder_runs_the_work(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        leader_work, follower_work = Work(), Work()
        leader = LeaderTick(RedisLease(client, "sb:scheduler:leader", 5), leader_work)
        follower = LeaderTick(RedisLease(client, "sb:scheduler:leader", 5), follower_work)

        assert leader() == 7
        assert follower() is None
        assert leader() == 7

        assert (leader_work.calls, follower_work.calls) == (2, 0)
        assert (leader.leading, follower.leading) == (True, False)
    finally:
        client.close()


def test_the_follower_takes_over_when_the_leader_releases(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        first_lease = RedisLease(client, "sb:scheduler:leader", 5)
        first, second = (
            LeaderTick(first_lease, Work()),
            LeaderTick(RedisLease(client, "sb:scheduler:leader", 5), Work()),
        )
        assert first() == 7
        assert second() is None
        first_lease.release()
        assert second() == 7
        assert first() is None
    finally:
        client.close()


def test_each_tick_coalesces_and_has_an_explicit_misfire_grace() -> None:
    settings = SchedulerSettings(relay_interval_s=5, stall_check_interval_s=60)
    scheduler = build_scheduler(settings, Work(), Work())
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"relay", "stalled-jobs"}
    for job, interval in ((jobs["relay"], 5), (jobs["stalled-jobs"], 60)):
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time == 2 * interval
        assert job.trigger.interval.total_seconds() == interval


class DownLease:
    """A lease whose Redis does not answer."""

    def acquire(self) -> bool:
        raise TransientError("cannot acquire lease: Timeout reading from socket")

    def release(self) -> None:
        raise TransientError("cannot release lease")


def test_a_tick_that_cannot_reach_redis_is_skipped_without_raising() -> None:
    work = Work()
    tick = LeaderTick(DownLease(), work, "relay")

    assert tick() is None
    assert (work.calls, tick.leading) == (0, False)


def _ticks(name: str, metric: str = "switchboard_scheduler_ticks_total") -> float:
    return REGISTRY.get_sample_value(metric, {"tick": name}) or 0.0


def test_a_leaders_tick_is_counted_with_its_time_and_a_followers_is_not(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        leader = LeaderTick(RedisLease(client, "sb:scheduler:leader", 5), Work(), "test-led")
        follower = LeaderTick(RedisLease(client, "sb:scheduler:leader", 5), Work(), "test-followed")
        before = _ticks("test-led")

        leader()
        follower()
    finally:
        client.close()

    assert _ticks("test-led") == before + 1
    assert _ticks("test-followed") == 0
    last = REGISTRY.get_sample_value(
        "switchboard_scheduler_last_tick_timestamp_seconds", {"tick": "test-led"}
    )
    assert last is not None
    assert abs(last - time.time()) < 60


def test_a_skipped_tick_is_counted_as_skipped() -> None:
    before = _ticks("test-down", "switchboard_scheduler_ticks_skipped_total")

    LeaderTick(DownLease(), Work(), "test-down")()

    assert _ticks("test-down", "switchboard_scheduler_ticks_skipped_total") == before + 1
    assert _ticks("test-down") == 0
