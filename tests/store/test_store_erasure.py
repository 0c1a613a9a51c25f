"""Forgetting a call or a user on request, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from contracts.errors import TransientError
from infra.bus.dead_letters import DeadLetter
from infra.erasure import Belongs, Eraser
from infra.store.audit import SqlAudit
from infra.store.erasure import CallKey, SqlErasure
from infra.store.records import MessageRef, Tenant
from infra.store.tables import (
    CALL_EVENTS,
    CALL_LOGS,
    CALLBACKS,
    HEALTH_ANSWERS,
    INTAKE_REJECTIONS,
    JOB_MESSAGES,
    JOBS,
    OUTBOUND_CALLS,
    USERS,
)
from infra.store.tenants import SqlTenantDirectory
from tests.fakes import FixedClock, InMemoryVectorIndex
from tests.seeds import NOW, Seeder, count

NUMBER = "+447700900123"


def letter(message_id: str, payload: dict[str, Any], **options: Any) -> DeadLetter:
    """A dead letter of ``payload`` with message ``options``."""
    return DeadLetter(
        message_id=message_id,
        redis_message_id=message_id,
        queue="calls.analyze",
        actor="analyze_call",
        dead_at=datetime(2026, 5, 30, tzinfo=UTC),
        message={"args": [payload], "options": options},
        failure=None,
    )


@dataclass
class ListBin:
    """Dead letters in a list (``DeadLetterBin``); ``down`` makes it unreachable."""

    letters: list[DeadLetter] = field(default_factory=list)
    down: bool = False
    purged: list[tuple[str, str, str]] = field(default_factory=list)

    def purge_matching(self, belongs: Belongs, *, actor: str, reason: str) -> int:
        """Drop the matching letters, recording who and why."""
        if self.down:
            raise TransientError("broker unreachable: connection refused")
        gone = [item for item in self.letters if belongs(item)]
        self.letters = [item for item in self.letters if not belongs(item)]
        self.purged += [(item.message_id, actor, reason) for item in gone]
        return len(gone)


class DownIndex(InMemoryVectorIndex):
    """A vector index that cannot be reached."""

    def fetch(self, namespace: str, ids: Any) -> list[Any]:  # noqa: ARG002 (the port's signature)
        """Fail like a timeout."""
        raise TransientError("Pinecone fetch failed: timed out")


@pytest.fixture
def seed(engine: sa.Engine) -> Seeder:
    return Seeder(engine, FixedClock(NOW))


@pytest.fixture
def index() -> InMemoryVectorIndex:
    return InMemoryVectorIndex()


@pytest.fixture
def bin_() -> ListBin:
    return ListBin()


@pytest.fixture
def eraser(engine: sa.Engine, index: InMemoryVectorIndex, bin_: ListBin) -> Eraser:
    return Eraser(SqlErasure(engine), index, SqlAudit(engine), bin_)


def _rows_of(engine: sa.Engine, tenant_id: str, conversation: str) -> dict[str, int]:
    return {
        "jobs": count(
            engine, JOBS, JOBS.c.tenant_id == tenant_id, JOBS.c.correlation_id == conversation
        ),
        "call logs": count(
            engine,
            CALL_LOGS,
            CALL_LOGS.c.tenant_id == tenant_id,
            CALL_LOGS.c.conversation_id == conversation,
        ),
        "callbacks": count(
            engine,
            CALLBACKS,
            CALLBACKS.c.tenant_id == tenant_id,
            CALLBACKS.c.conversation_id == conversation,
        ),
        "outbound calls": count(
            engine,
            OUTBOUND_CALLS,
            OUTBOUND_CALLS.c.tenant_id == tenant_id,
            OUTBOUND_CALLS.c.conversation_id == conversation,
        ),
    }


def test_forgetting_a_call_deletes_everything_of_it_in_that_tenant_only(
    engine: sa.Engine, seed: Seeder, tenant: Tenant, index: InMemoryVectorIndex, bin_: ListBin
) -> None:
    other, _ = SqlTenantDirectory(engine).add_tenant("globex")
    seed.call("conv_1", tenant_id=tenant.id, callback="completed", vectors=index, chunks=40)
    seed.call("conv_1", tenant_id=other.id, vectors=index)
    seed.rejection("conv_1")
    bin_.letters = [
        letter(
            "m-mine", {"conversation_id": "conv_1"}, tenant_id=tenant.id, correlation_id="conv_1"
        ),
        letter(
            "m-theirs", {"conversation_id": "conv_1"}, tenant_id=other.id, correlation_id="conv_1"
        ),
        letter("m-callback", {"tenant_id": tenant.id, "conversation_id": "conv_1"}),
    ]

    erasure = eraser_of(engine, index, bin_).forget_call(
        CallKey(tenant.id, "conv_1"), tenant_name="acme", actor="ana", reason="DSR-7"
    )

    assert erasure.outcome == "deleted"
    assert erasure.deleted == {
        "jobs": 1,
        "job steps": 1,
        "call logs": 1,
        "callbacks": 1,
        "outbound calls": 1,
        "call events": 2,
        "vectors": 41,
        "intake rejections": 1,
        "dead letters": 2,
    }
    assert _rows_of(engine, tenant.id, "conv_1") == dict.fromkeys(
        ("jobs", "call logs", "callbacks", "outbound calls"), 0
    )
    assert _rows_of(engine, other.id, "conv_1")["call logs"] == 1
    assert index.namespaces[f"tenant-{tenant.id}"] == {}
    assert len(index.namespaces[f"tenant-{other.id}"]) == 4
    assert [item.message_id for item in bin_.letters] == ["m-theirs"]
    assert {(actor, reason) for _, actor, reason in bin_.purged} == {("ana", "DSR-7")}
    [entry] = SqlAudit(engine).entries(action="forget")
    assert (entry.actor, entry.target, entry.reason) == ("ana", "call acme/conv_1", "DSR-7")
    assert entry.outcome.startswith("deleted: jobs 1, job steps 1, call logs 1, callbacks 1")


def eraser_of(engine: sa.Engine, index: InMemoryVectorIndex, bin_: ListBin | None) -> Eraser:
    return Eraser(SqlErasure(engine), index, SqlAudit(engine), bin_)


def test_forgetting_a_call_again_reports_nothing_left(
    engine: sa.Engine, seed: Seeder, tenant: Tenant, eraser: Eraser, index: InMemoryVectorIndex
) -> None:
    seed.call("conv_h", tenant_id=tenant.id, health=True, vectors=index)
    key = CallKey(tenant.id, "conv_h")

    first = eraser.forget_call(key, tenant_name="acme", actor="ana", reason="DSR-8")
    second = eraser.forget_call(key, tenant_name="acme", actor="ana", reason="DSR-8")

    assert first.deleted["health answers"] == 3
    assert count(engine, HEALTH_ANSWERS) == 0
    assert (second.outcome, second.deleted.total(), second.summary()) == (
        "nothing left",
        0,
        "nothing left",
    )
    outcomes = [e.outcome for e in SqlAudit(engine).entries(action="forget")]
    assert outcomes[0] == "nothing left"


def test_a_call_still_being_processed_is_kept_whole(
    engine: sa.Engine, seed: Seeder, tenant: Tenant, eraser: Eraser, index: InMemoryVectorIndex
) -> None:
    job = seed.call("conv_busy", tenant_id=tenant.id, status="processing", vectors=index)

    erasure = eraser.forget_call(
        CallKey(tenant.id, "conv_busy"), tenant_name="acme", actor="ana", reason="DSR-9"
    )

    assert erasure.outcome == "partial"
    assert erasure.kept[0] == f"call conv_busy: still being processed (job {job})"
    assert _rows_of(engine, tenant.id, "conv_busy")["jobs"] == 1
    assert len(index.namespaces[f"tenant-{tenant.id}"]) == 4


def test_forgetting_a_user_deletes_their_calls_by_number_their_daily_calls_and_their_row(
    engine: sa.Engine,
    seed: Seeder,
    tenant: Tenant,
    eraser: Eraser,
    index: InMemoryVectorIndex,
    bin_: ListBin,
) -> None:
    user = seed.user(tenant.id, phone=NUMBER)
    seed.outbound(tenant_id=tenant.id, user_id=user, status="completed", phone=NUMBER)
    seed.outbound(tenant_id=tenant.id, user_id=user, status="no_answer", phone=NUMBER)
    seed.call("conv_from_them", tenant_id=tenant.id, caller_number=NUMBER, vectors=index)
    seed.call("conv_health", tenant_id=tenant.id, caller_number=NUMBER, health=True)
    seed.call("conv_someone_else", tenant_id=tenant.id, caller_number="+447700900999")
    bin_.letters = [
        letter("m-daily", {"user_id": user, "phone": NUMBER}, tenant_id=tenant.id),
        letter("m-call", {}, tenant_id=tenant.id, correlation_id="conv_from_them"),
        letter("m-other", {"user_id": "usr_other"}, tenant_id=tenant.id),
    ]

    erasure = eraser.forget_user(user, actor="ana", reason="DSR-10")

    assert erasure.outcome == "deleted"
    assert erasure.calls == [
        CallKey(tenant.id, "conv_from_them"),
        CallKey(tenant.id, "conv_health"),
    ]
    assert erasure.deleted["users"] == 1
    assert erasure.deleted["outbound calls"] == 2
    assert erasure.deleted["call events"] == 4
    assert erasure.deleted["jobs"] == 2
    assert erasure.deleted["dead letters"] == 2
    assert count(engine, USERS) == 0
    assert count(engine, OUTBOUND_CALLS) == 0
    assert count(engine, CALL_EVENTS) == 0
    assert count(engine, JOBS) == 1
    assert count(engine, JOB_MESSAGES) == 1
    assert [item.message_id for item in bin_.letters] == ["m-other"]
    assert eraser.forget_user(user, actor="ana", reason="DSR-10").outcome == "nothing left"


def test_a_shared_number_leaves_its_calls_and_says_whose_they_may_be(
    engine: sa.Engine, seed: Seeder, tenant: Tenant, eraser: Eraser, index: InMemoryVectorIndex
) -> None:
    user = seed.user(tenant.id, phone=NUMBER)
    sibling = seed.user(tenant.id, phone=NUMBER)
    seed.outbound(tenant_id=tenant.id, user_id=user, status="completed", phone=NUMBER)
    seed.call("conv_shared_line", tenant_id=tenant.id, caller_number=NUMBER, vectors=index)

    erasure = eraser.forget_user(user, actor="ana", reason="DSR-12")

    assert erasure.outcome == "deleted"
    assert erasure.calls == []
    assert erasure.left == [
        f"1 call(s) from or to their number, which is also user {sibling}'s: conv_shared_line"
        " (forget each that is theirs with `switchboard forget call CONVERSATION_ID "
        f"--tenant {tenant.name} --reason …`)"
    ]
    assert erasure.deleted["users"] == 1
    assert erasure.deleted["outbound calls"] == 1
    assert _rows_of(engine, tenant.id, "conv_shared_line")["jobs"] == 1
    assert len(index.namespaces[f"tenant-{tenant.id}"]) > 0
    assert count(engine, USERS) == 1
    [entry] = SqlAudit(engine).entries(action="forget")
    assert "left 1 call(s)" in entry.outcome
    assert NUMBER not in entry.outcome


def test_a_user_with_a_call_in_flight_keeps_their_row_until_forgotten_again(
    engine: sa.Engine, seed: Seeder, tenant: Tenant, eraser: Eraser
) -> None:
    user = seed.user(tenant.id, phone=NUMBER)
    job = seed.call("conv_now", tenant_id=tenant.id, caller_number=NUMBER, status="processing")

    first = eraser.forget_user(user, actor="ana", reason="DSR-11")
    seed.progress.message_succeeded(job, _first_message(engine, job))
    second = eraser.forget_user(user, actor="ana", reason="DSR-11")

    assert first.outcome == "partial"
    assert count(engine, USERS) == 0
    assert second.outcome == "deleted"
    assert second.deleted["jobs"] == 1


def _first_message(engine: sa.Engine, job_id: str) -> MessageRef:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(JOB_MESSAGES.c.key, JOB_MESSAGES.c.name).where(
                JOB_MESSAGES.c.job_id == job_id
            )
        ).one()
    return MessageRef(row.key, row.name, 0)


def test_unreadable_dead_letters_are_reported_kept_and_the_rest_goes(
    engine: sa.Engine, seed: Seeder, tenant: Tenant, index: InMemoryVectorIndex
) -> None:
    seed.call("conv_1", tenant_id=tenant.id)
    down = ListBin(down=True)

    erasure = eraser_of(engine, index, down).forget_call(
        CallKey(tenant.id, "conv_1"), tenant_name="acme", actor="ana", reason="DSR-12"
    )
    without_broker = eraser_of(engine, index, None).forget_call(
        CallKey(tenant.id, "conv_1"), tenant_name="acme", actor="ana", reason="DSR-12"
    )

    assert erasure.outcome == "partial"
    assert erasure.deleted["call logs"] == 1
    assert erasure.kept == ["dead letters: broker unreachable: connection refused"]
    assert without_broker.kept == ["dead letters: no broker to read them from"]


def test_a_vector_index_that_fails_stops_the_forget_before_the_rows_and_is_audited(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    seed.call("conv_1", tenant_id=tenant.id)
    eraser = Eraser(SqlErasure(engine), DownIndex(), SqlAudit(engine), ListBin())

    with pytest.raises(TransientError, match="timed out"):
        eraser.forget_call(
            CallKey(tenant.id, "conv_1"), tenant_name="acme", actor="ana", reason="r"
        )

    assert _rows_of(engine, tenant.id, "conv_1")["call logs"] == 1
    [entry] = SqlAudit(engine).entries(action="forget")
    assert entry.outcome == "failed: Pinecone fetch failed: timed out"


def test_calls_of_a_number_are_found_by_caller_number_and_by_callback(
    engine: sa.Engine, seed: Seeder, tenant: Tenant
) -> None:
    seed.call("conv_a", tenant_id=tenant.id, caller_number=NUMBER)
    seed.call("conv_b", tenant_id=tenant.id, callback="scheduled", caller_number=NUMBER)
    seed.call("conv_c", tenant_id=tenant.id)

    found = SqlErasure(engine).calls_of_number(tenant.id, NUMBER)

    assert found == [CallKey(tenant.id, "conv_a"), CallKey(tenant.id, "conv_b")]
    assert count(engine, INTAKE_REJECTIONS) == 0
