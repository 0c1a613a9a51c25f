"""Cron ticks: one job per slot whatever the replicas, catch-up within the grace window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts import DailyCallsTick
from infra.bus.dispatch import InlineDispatcher
from infra.bus.publishing import InMemoryPublisher
from infra.intake import Intake
from infra.settings import DailyCallsSettings, SchedulerSettings
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.slots import SqlSchedulerSlots
from infra.ticks import CALLBACKS_DUE, DAILY_CALLS, cron_of, next_fire, trigger_of
from scheduler.main import build_scheduler
from scheduler.ticks import SlotBook, emit_due_slots

EVERY = timedelta(minutes=5)
GRACE = timedelta(minutes=30)
NOW = datetime(2026, 12, 4, 10, 7, 12, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    upgrade(url)
    return create_engine(url)


class StaleSlots:
    """A slot book that has not seen the other replica's last slot yet."""

    def __init__(self) -> None:
        self.recorded: list[datetime] = []

    def last_slot(self, name: str) -> datetime | None:  # noqa: ARG002 (SlotBook's signature)
        return None

    def record_slot(self, name: str, slot: datetime) -> None:  # noqa: ARG002
        self.recorded.append(slot)


class Replica:
    """One scheduler process: its own publisher, the shared job store."""

    def __init__(self, engine: sa.Engine, slots: SlotBook | None = None) -> None:
        self.publisher = InMemoryPublisher()
        ledger = SqlJobLedger(engine)
        self.intake = Intake(ledger, InlineDispatcher(self.publisher, ledger))
        self.slots = slots or SqlSchedulerSlots(engine)

    def fire(self, now: datetime) -> int:
        return emit_due_slots(
            DAILY_CALLS, intake=self.intake, slots=self.slots, now=now, every=EVERY, grace=GRACE
        )

    def slots_published(self) -> list[datetime]:
        return [DailyCallsTick.model_validate(e.payload).slot for e in self.publisher.published]


def test_a_first_run_emits_the_current_slot(engine: sa.Engine) -> None:
    replica = Replica(engine)

    assert replica.fire(NOW) == 1

    assert replica.slots_published() == [datetime(2026, 12, 4, 10, 5, tzinfo=UTC)]
    assert replica.slots.last_slot(DAILY_CALLS.name) == datetime(2026, 12, 4, 10, 5, tzinfo=UTC)


def test_a_second_fire_in_the_same_slot_emits_nothing(engine: sa.Engine) -> None:
    replica = Replica(engine)
    replica.fire(NOW)

    assert replica.fire(NOW + timedelta(seconds=30)) == 0
    assert len(replica.publisher.published) == 1


def test_two_replicas_emitting_the_same_slot_publish_it_once(engine: sa.Engine) -> None:
    first, second = Replica(engine), Replica(engine, StaleSlots())
    first.fire(NOW)

    second.fire(NOW)  # emits 10:05 too: a duplicate job, not published again

    assert len(first.publisher.published) == 1
    assert second.publisher.published == []


def test_a_scheduler_back_from_downtime_catches_up_within_the_grace_window(
    engine: sa.Engine,
) -> None:
    replica = Replica(engine)
    replica.slots.record_slot(DAILY_CALLS.name, datetime(2026, 12, 4, 9, 50, tzinfo=UTC))

    assert replica.fire(NOW) == 3

    assert replica.slots_published() == [
        datetime(2026, 12, 4, 9, 55, tzinfo=UTC),
        datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        datetime(2026, 12, 4, 10, 5, tzinfo=UTC),
    ]


def test_slots_older_than_the_grace_window_are_skipped(engine: sa.Engine) -> None:
    replica = Replica(engine)
    replica.slots.record_slot(DAILY_CALLS.name, datetime(2026, 12, 4, 6, 0, tzinfo=UTC))

    replica.fire(NOW)

    published = replica.slots_published()
    assert published[0] >= NOW - GRACE
    assert published[-1] == datetime(2026, 12, 4, 10, 5, tzinfo=UTC)
    assert len(published) == 6  # 09:40 … 10:05


def test_the_recorded_slot_never_moves_backwards(engine: sa.Engine) -> None:
    slots = SqlSchedulerSlots(engine)
    slots.record_slot("daily-calls", datetime(2026, 12, 4, 10, 5, tzinfo=UTC))

    slots.record_slot("daily-calls", datetime(2026, 12, 4, 9, 0, tzinfo=UTC))

    assert slots.last_slot("daily-calls") == datetime(2026, 12, 4, 10, 5, tzinfo=UTC)
    assert slots.last_slot("callbacks-due") is None


def test_the_ticks_cron_follows_the_setting() -> None:
    assert cron_of(DailyCallsSettings(tick_every_min=5)) == "*/5 * * * *"
    assert cron_of(DailyCallsSettings(tick_every_min=1)) == "* * * * *"
    assert next_fire(DailyCallsSettings(tick_every_min=15), NOW) == datetime(
        2026, 12, 4, 10, 15, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="must divide 60"):
        DailyCallsSettings(tick_every_min=7)


def test_the_scheduler_runs_each_tick_on_its_cron_with_a_grace() -> None:
    scheduler = build_scheduler(
        SchedulerSettings(),
        lambda: 0,
        lambda: 0,
        ticks={DAILY_CALLS.name: lambda: 0, CALLBACKS_DUE.name: lambda: 0},
        tick_trigger=trigger_of(DailyCallsSettings()),
        tick_grace_s=1800,
    )
    jobs = {job.id: job for job in scheduler.get_jobs()}

    assert set(jobs) == {"relay", "stalled-jobs", "daily-calls", "callbacks-due"}
    for name in ("daily-calls", "callbacks-due"):
        assert jobs[name].misfire_grace_time == 1800
        assert jobs[name].coalesce is True
        assert "minute='*/5'" in str(jobs[name].trigger)
