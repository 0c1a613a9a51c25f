"""The call-record ports' contract (CallRecords, CallbackBook, HealthRecords).

Run over the SQL store on SQLite and PostgreSQL and over the in-memory fake the unit
tests use. The ports have no read side for callbacks and answers, so each world says
how to look at what it stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from actors.ports import CallbackBook, CallRecords, HealthRecords
from contracts import HealthAnswer
from contracts.errors import PermanentError
from contracts.values import CallLogEntry
from infra.store.calls import SqlCallStore
from infra.store.engine import create_engine
from infra.store.migrate import upgrade
from infra.store.tables import CALLBACKS, HEALTH_ANSWERS
from infra.store.tenants import SqlTenantDirectory
from tests.builders import make_analysis
from tests.fakes import InMemoryCallStore

IST = timezone(timedelta(hours=5, minutes=30))
STARTED_AT = datetime(2026, 3, 2, 15, 0, tzinfo=IST)
DUE = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)

Callback = tuple[datetime, str]
"""A stored callback as the tests compare it: (due at, reason)."""


@dataclass
class World:
    """The ports over one store, two tenants, and how to look at the store's rows.

    Attributes:
        records: The store as ``CallRecords``.
        callbacks: The store as ``CallbackBook``.
        health: The store as ``HealthRecords``.
        acme: A tenant's id.
        globex: Another tenant's id.
        callback_of: The stored callback of a (tenant, conversation), if any.
        answers_of: The stored answers of a (tenant, conversation), by question.
        enforces_tenants: Whether writes for an unknown tenant are refused.
    """

    records: CallRecords
    callbacks: CallbackBook
    health: HealthRecords
    acme: str
    globex: str
    callback_of: Callable[[str, str], Callback | None]
    answers_of: Callable[[str, str], dict[str, HealthAnswer]]
    enforces_tenants: bool


def _fake_world() -> World:
    store = InMemoryCallStore()

    def callback_of(tenant_id: str, conversation_id: str) -> Callback | None:
        row = store.callbacks.get((tenant_id, conversation_id))
        return None if row is None else (row.due_at, row.reason)

    def answers_of(tenant_id: str, conversation_id: str) -> dict[str, HealthAnswer]:
        return dict(store.health_answers.get((tenant_id, conversation_id), {}))

    return World(store, store, store, "t-acme", "t-globex", callback_of, answers_of, False)


def _sql_world(engine: sa.Engine) -> World:
    store = SqlCallStore(engine)
    directory = SqlTenantDirectory(engine)
    acme, _ = directory.add_tenant("acme")
    globex, _ = directory.add_tenant("globex")

    def callback_of(tenant_id: str, conversation_id: str) -> Callback | None:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(CALLBACKS.c.due_at, CALLBACKS.c.reason).where(
                    CALLBACKS.c.tenant_id == tenant_id,
                    CALLBACKS.c.conversation_id == conversation_id,
                )
            ).first()
        return None if row is None else (row.due_at, row.reason)

    def answers_of(tenant_id: str, conversation_id: str) -> dict[str, HealthAnswer]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(HEALTH_ANSWERS).where(
                    HEALTH_ANSWERS.c.tenant_id == tenant_id,
                    HEALTH_ANSWERS.c.conversation_id == conversation_id,
                )
            ).all()
        return {
            row.question: HealthAnswer(
                question=row.question, answer=row.answer, value=row.value, unit=row.unit
            )
            for row in rows
        }

    return World(store, store, store, acme.id, globex.id, callback_of, answers_of, True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "fake"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "fake":
        yield _fake_world()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'calls.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    engine = create_engine(url)
    try:
        yield _sql_world(engine)
    finally:
        engine.dispose()


def _entry(tenant_id: str, **overrides: Any) -> CallLogEntry:
    fields: dict[str, Any] = {
        "tenant_id": tenant_id,
        "conversation_id": "conv-1",
        "agent_id": "agent_1",
        "job_id": "job-1",
        "analysis": make_analysis(),
        "duration_secs": 95,
        "call_status": "done",
        "started_at": STARTED_AT,
    }
    return CallLogEntry.model_validate(fields | overrides)


def _answers(**by_question: str) -> list[HealthAnswer]:
    return [HealthAnswer(question=q, answer=a) for q, a in by_question.items()]


def test_a_saved_call_log_reads_back_equal_for_its_tenant_and_conversation_only(
    world: World,
) -> None:
    entry = _entry(world.acme)

    world.records.save_call_log(entry)

    loaded = world.records.get_call_log(world.acme, "conv-1")
    assert loaded == entry
    assert loaded is not None
    assert loaded.started_at == STARTED_AT
    assert world.records.get_call_log(world.acme, "conv-2") is None
    assert world.records.get_call_log(world.globex, "conv-1") is None


def test_saving_a_call_log_again_replaces_it(world: World) -> None:
    world.records.save_call_log(_entry(world.acme))
    replayed = _entry(world.acme, analysis=make_analysis(sentiment="positive"), duration_secs=7)

    world.records.save_call_log(replayed)

    assert world.records.get_call_log(world.acme, "conv-1") == replayed


def test_two_tenants_with_one_conversation_id_keep_separate_call_logs(world: World) -> None:
    ours = _entry(world.acme)
    theirs = _entry(world.globex, agent_id="agent_9", job_id="job-9", duration_secs=12)

    world.records.save_call_log(ours)
    world.records.save_call_log(theirs)

    assert world.records.get_call_log(world.acme, "conv-1") == ours
    assert world.records.get_call_log(world.globex, "conv-1") == theirs


def test_a_callback_is_scheduled_once_per_tenant_and_conversation(world: World) -> None:
    first = world.callbacks.schedule_callback(
        tenant_id=world.acme, conversation_id="conv-1", due_at=DUE, reason="asked"
    )
    again = world.callbacks.schedule_callback(
        tenant_id=world.acme,
        conversation_id="conv-1",
        due_at=DUE + timedelta(days=1),
        reason="asked again",
    )
    other_call = world.callbacks.schedule_callback(
        tenant_id=world.acme, conversation_id="conv-2", due_at=DUE, reason="other call"
    )
    other_tenant = world.callbacks.schedule_callback(
        tenant_id=world.globex, conversation_id="conv-1", due_at=DUE, reason="globex"
    )

    assert (first, again, other_call, other_tenant) == (True, False, True, True)
    assert world.callback_of(world.acme, "conv-1") == (DUE, "asked")
    assert world.callback_of(world.acme, "conv-2") == (DUE, "other call")
    assert world.callback_of(world.globex, "conv-1") == (DUE, "globex")


def test_health_answers_are_upserted_per_question_and_the_last_of_a_batch_wins(
    world: World,
) -> None:
    assert world.health.has_health_answers(world.acme, "conv-1") is False

    world.health.save_health_answers(
        tenant_id=world.acme, conversation_id="conv-1", answers=_answers(sleep="six", pain="none")
    )
    world.health.save_health_answers(
        tenant_id=world.acme,
        conversation_id="conv-1",
        answers=[
            HealthAnswer(question="sleep", answer="seven", value=7, unit="hours"),
            HealthAnswer(question="bp", answer="fine", value=120, unit="mmHg"),
            HealthAnswer(question="bp", answer="a bit high", value=135, unit="mmHg"),
        ],
    )

    assert world.health.has_health_answers(world.acme, "conv-1") is True
    assert world.health.has_health_answers(world.acme, "conv-2") is False
    assert world.health.has_health_answers(world.globex, "conv-1") is False
    assert world.answers_of(world.acme, "conv-1") == {
        "bp": HealthAnswer(question="bp", answer="a bit high", value=135, unit="mmHg"),
        "pain": HealthAnswer(question="pain", answer="none"),
        "sleep": HealthAnswer(question="sleep", answer="seven", value=7, unit="hours"),
    }


def test_saving_no_health_answers_records_none(world: World) -> None:
    world.health.save_health_answers(tenant_id=world.acme, conversation_id="conv-1", answers=[])

    assert world.health.has_health_answers(world.acme, "conv-1") is False
    assert world.answers_of(world.acme, "conv-1") == {}


def test_a_replay_for_one_tenant_leaves_the_other_tenants_rows_alone(world: World) -> None:
    theirs = _entry(world.globex, job_id="job-9")
    world.records.save_call_log(_entry(world.acme))
    world.records.save_call_log(theirs)
    for tenant_id, name in ((world.acme, "acme"), (world.globex, "globex")):
        world.callbacks.schedule_callback(
            tenant_id=tenant_id, conversation_id="conv-1", due_at=DUE, reason=name
        )
        world.health.save_health_answers(
            tenant_id=tenant_id, conversation_id="conv-1", answers=_answers(sleep=name)
        )

    replayed = _entry(world.acme, analysis=make_analysis(sentiment="positive"))
    world.records.save_call_log(replayed)
    again = world.callbacks.schedule_callback(
        tenant_id=world.acme, conversation_id="conv-1", due_at=DUE, reason="replayed"
    )
    world.health.save_health_answers(
        tenant_id=world.acme, conversation_id="conv-1", answers=_answers(sleep="replayed")
    )

    assert again is False
    assert world.records.get_call_log(world.acme, "conv-1") == replayed
    assert world.records.get_call_log(world.globex, "conv-1") == theirs
    assert world.callback_of(world.acme, "conv-1") == (DUE, "acme")
    assert world.callback_of(world.globex, "conv-1") == (DUE, "globex")
    assert world.answers_of(world.acme, "conv-1") == {"sleep": _answers(sleep="replayed")[0]}
    assert world.answers_of(world.globex, "conv-1") == {"sleep": _answers(sleep="globex")[0]}


def test_rows_of_an_unknown_tenant_are_a_permanent_error(world: World) -> None:
    if not world.enforces_tenants:
        pytest.skip("the fake keeps no tenant directory to check tenant ids against")

    with pytest.raises(PermanentError):
        world.records.save_call_log(_entry("ghost"))
    with pytest.raises(PermanentError):
        world.callbacks.schedule_callback(
            tenant_id="ghost", conversation_id="conv-1", due_at=DUE, reason="r"
        )
    with pytest.raises(PermanentError):
        world.health.save_health_answers(
            tenant_id="ghost", conversation_id="conv-1", answers=_answers(sleep="six")
        )
