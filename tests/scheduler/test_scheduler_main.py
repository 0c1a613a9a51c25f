from __future__ import annotations

import redis

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


def test_the_relay_job_coalesces_and_has_an_explicit_misfire_grace() -> None:
    scheduler = build_scheduler(SchedulerSettings(relay_interval_s=5), Work())
    [job] = scheduler.get_jobs()
    assert job.id == "relay"
    assert job.coalesce is True
    assert job.max_instances == 1
    assert job.misfire_grace_time == 10
    assert job.trigger.interval.total_seconds() == 5
