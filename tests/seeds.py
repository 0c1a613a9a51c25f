"""Seeding the store with calls, jobs, outbound calls and users at chosen times.

Retention and erasure tests need records of every kind, some old and some new: the
``Seeder`` writes them through the real repositories (the ledger, progress, the call
store, the users) on a clock the test moves, and inserts outbound calls and their
status events directly, where no repository takes a time of the test's choosing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from contracts import DailyCallsTick
from contracts.users import NewUser
from contracts.values import (
    CallLogEntry,
    VectorRecord,
    summary_vector_id,
    tenant_namespace,
    transcript_vector_id,
)
from infra.call_vectors import VectorEraser
from infra.store.calls import SqlCallStore
from infra.store.engine import transaction
from infra.store.jobs import SqlJobLedger
from infra.store.progress import SqlJobProgress
from infra.store.records import MessageRef
from infra.store.tables import CALL_EVENTS, CALLBACKS, OUTBOUND_CALLS
from infra.store.users import SqlUsers
from tests.builders import (
    make_analysis,
    make_health_answers,
    make_health_check_job,
    make_inbox_entry,
    make_post_call_job,
)
from tests.fakes import FixedClock

LONG_AGO = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
"""When "old" records were written: far older than any retention."""
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
"""The present of the tests."""


class VectorSink(VectorEraser, Protocol):
    """A vector index the seeder can also write to."""

    def upsert(self, namespace: str, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id."""
        ...


@dataclass
class Seeder:
    """Writes records on ``clock``; move it to make them old or new."""

    engine: sa.Engine
    clock: FixedClock

    def __post_init__(self) -> None:
        self.ledger = SqlJobLedger(self.engine, clock=self.clock)
        self.progress = SqlJobProgress(self.engine, clock=self.clock)
        self.calls = SqlCallStore(self.engine, clock=self.clock)
        self.users = SqlUsers(self.engine, clock=self.clock)
        self._attempts = 0

    def call(
        self,
        conversation_id: str,
        *,
        tenant_id: str,
        status: str = "completed",
        health: bool = False,
        caller_number: str | None = None,
        callback: str | None = None,
        vectors: VectorSink | None = None,
        chunks: int = 3,
    ) -> str:
        """A call with its rows; return its job id.

        Args:
            conversation_id: The call's conversation id.
            tenant_id: Its tenant.
            status: Its job's status: ``completed``, ``failed``, ``processing`` or ``queued``.
            health: A health-check call (answers, no call log) instead of a general one.
            caller_number: The caller's number, in the job's payload.
            callback: ``scheduled`` for a callback still to place; any other outbound
                call status places one, with two status events.
            vectors: Where its summary and ``chunks`` transcript vectors go.
            chunks: How many transcript chunks it has.
        """
        job_id = uuid.uuid4().hex
        fields = {
            "job_id": job_id,
            "tenant_id": tenant_id,
            "conversation_id": conversation_id,
            "correlation_id": conversation_id,
            "caller_number": caller_number,
        }
        contract = make_health_check_job(**fields) if health else make_post_call_job(**fields)
        self.ledger.accept(make_inbox_entry(contract))
        self._finish(job_id, MessageRef(contract.idempotency_key, contract.route.actor, 0), status)
        if health:
            self.calls.save_health_answers(
                tenant_id=tenant_id, conversation_id=conversation_id, answers=make_health_answers()
            )
        else:
            self.calls.save_call_log(
                CallLogEntry(
                    tenant_id=tenant_id,
                    conversation_id=conversation_id,
                    agent_id="agent_general",
                    job_id=job_id,
                    analysis=make_analysis(),
                )
            )
        if callback is not None:
            self._callback(tenant_id, conversation_id, callback, caller_number)
        if vectors is not None:
            ids = [summary_vector_id(conversation_id)] + [
                transcript_vector_id(conversation_id, n) for n in range(chunks)
            ]
            vectors.upsert(
                tenant_namespace(tenant_id),
                [VectorRecord(id=i, values=[1.0, 0.0, 0.5], metadata={}) for i in ids],
            )
        return job_id

    def _finish(self, job_id: str, first: MessageRef, status: str) -> None:
        if status == "queued":
            return
        self.progress.message_started(job_id, first)
        if status == "completed":
            self.progress.message_succeeded(job_id, first)
        elif status == "failed":
            self.progress.message_failed(job_id, first, error="boom", dead_letter_id="dl-1")

    def _callback(
        self, tenant_id: str, conversation_id: str, status: str, phone: str | None
    ) -> None:
        number = phone or "+14155550100"
        self.calls.schedule_callback(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            due_at=self.clock(),
            reason="call me back",
            phone=number,
        )
        if status != "scheduled":
            # As a callbacks tick claims it: the callback is queued with its call's id.
            placed = self.outbound(
                tenant_id=tenant_id, status=status, conversation_id=conversation_id, phone=number
            )
            with transaction(self.engine) as conn:
                conn.execute(
                    CALLBACKS.update()
                    .where(
                        CALLBACKS.c.tenant_id == tenant_id,
                        CALLBACKS.c.conversation_id == conversation_id,
                    )
                    .values(status="queued", call_id=placed)
                )

    def tick(self, status: str = "completed", *, children: int = 2) -> str:
        """A daily-calls tick job that fanned out ``children`` placements; its id."""
        job_id = uuid.uuid4().hex
        contract = DailyCallsTick(job_id=job_id, correlation_id=f"tick-{job_id}", slot=self.clock())
        self.ledger.accept(
            make_inbox_entry(contract, source="scheduler", tenant_id=None, kind="daily_calls")
        )
        first = MessageRef(contract.idempotency_key, contract.route.actor, 0)
        self.progress.message_started(job_id, first)
        placements = [MessageRef(f"{job_id}:{n}", "place_user_call", 1) for n in range(children)]
        self.progress.message_succeeded(job_id, first, children=placements)
        for child in placements:
            self.progress.message_started(job_id, child)
            if status == "failed":
                self.progress.message_failed(job_id, child, error="x", dead_letter_id="dl-2")
            elif status == "completed":
                self.progress.message_succeeded(job_id, child)
        return job_id

    def outbound(
        self,
        *,
        tenant_id: str,
        status: str,
        user_id: str | None = None,
        conversation_id: str | None = None,
        phone: str = "+14155550100",
        events: int = 2,
    ) -> str:
        """An outbound call (a user's daily call, or a callback) and ``events`` status events."""
        call_id = f"call_{uuid.uuid4().hex}"
        now = self.clock()
        # Each call its own attempt: (user, local date, attempt) is unique.
        self._attempts += 1
        with transaction(self.engine) as conn:
            conn.execute(
                sa.insert(OUTBOUND_CALLS).values(
                    id=call_id,
                    tenant_id=tenant_id,
                    purpose="daily" if user_id else "callback",
                    user_id=user_id,
                    conversation_id=conversation_id,
                    local_date=now.date() if user_id else None,
                    attempt=self._attempts,
                    phone=phone,
                    status=status,
                    created_at=now,
                    updated_at=now,
                )
            )
            for n in range(events):
                self.event(call_id, conn=conn, status=("ringing", "completed")[n % 2])
        return call_id

    def event(
        self, call_id: str | None, *, status: str = "completed", conn: sa.Connection | None = None
    ) -> None:
        """A telephony status event for ``call_id`` (one nobody knows, with None)."""
        values = {
            "event_key": uuid.uuid4().hex,
            "call_id": call_id,
            "status": status,
            "outcome": "applied",
            "payload": {"status": status},
            "received_at": self.clock(),
        }
        if conn is not None:
            conn.execute(sa.insert(CALL_EVENTS).values(values))
            return
        with transaction(self.engine) as own:
            own.execute(sa.insert(CALL_EVENTS).values(values))

    def rejection(self, conversation_id: str) -> None:
        """A webhook refused at intake for an unknown agent."""
        self.ledger.record_rejection(
            source="elevenlabs",
            external_id=conversation_id,
            reason="unknown agent",
            payload=b'{"transcript": "personal"}',
        )

    def user(self, tenant_id: str, phone: str = "+14155550100") -> str:
        """A user called every day at 09:00 in London; their id."""
        return self.users.add_user(
            tenant_id,
            NewUser.model_validate(
                {"name": "Ada", "phone": phone, "local_tz": "Europe/London", "call_time": "09:00"}
            ),
        ).id

    def age(self, by: timedelta) -> None:
        """Move the clock on."""
        self.clock.advance(by)


def count(engine: sa.Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    """Rows of ``table`` matching every condition."""
    with transaction(engine) as conn:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(conn.execute(query).scalar_one())
