"""Finished records older than a cutoff, found oldest first and deleted in batches.

One ``Sweep`` per kind of record (``KINDS``), each with its own cutoff:

- ``calls``: a call whole (``infra.store.erasure``), once every job of it is completed
  or failed and none moved since the cutoff, and no callback of it is still to place;
- ``completed_jobs``, ``failed_jobs``: jobs of every other kind (the ticks …), with
  their step rows;
- ``outbound_calls``: daily calls and callbacks that ended (or were missed, cancelled,
  unplaceable, or of unknown outcome), with their status events;
- ``call_events``: status events of no call we know, by when they arrived;
- ``intake_rejections``: requests refused at intake, by when they came.

Never touched: queued or processing jobs, outbound calls still to place or in
progress, users, tenants, tokens, the scheduler's slots, and the audit log, which is
append-only. Console sessions delete themselves when they expire.

A batch is the next ``size`` records of a kind on an index, oldest first, after the
last one seen (``Cursor``), read in one short transaction; deleting them is another,
which checks again that each record still qualifies (a replay may have revived a
failed job meanwhile). So a batch holds the database for one bounded statement set,
on SQLite and PostgreSQL alike, and a dry run walks the same batches, counting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from infra.store.calls import CALL_KINDS
from infra.store.dialing import ENDED
from infra.store.engine import transaction
from infra.store.erasure import (
    FINISHED_JOBS,
    CallKey,
    Tally,
    call_jobs,
    delete_call_rows,
    delete_outbound_calls,
    remove,
)
from infra.store.tables import (
    CALL_EVENTS,
    CALLBACKS,
    INTAKE_REJECTIONS,
    JOB_MESSAGES,
    JOBS,
    OUTBOUND_CALLS,
)

Kind = Literal[
    "calls", "completed_jobs", "failed_jobs", "outbound_calls", "call_events", "intake_rejections"
]
KINDS: tuple[Kind, ...] = (
    "calls",
    "completed_jobs",
    "failed_jobs",
    "outbound_calls",
    "call_events",
    "intake_rejections",
)
"""Every kind, in the order a purge sweeps them."""

FINISHED_CALLS = (*ENDED, "missed", "unplaceable", "cancelled", "unknown")
"""Outbound call statuses nothing will act on any more (``unknown`` is reviewed, then old)."""


@dataclass(frozen=True)
class Cursor:
    """Where a sweep stands: its lane, and the (age, id) of the last record read."""

    lane: int
    at: datetime
    id: Any


@dataclass(frozen=True)
class Batch:
    """Records of one kind read together: their ids, and the calls they are for."""

    ids: list[Any]
    calls: list[CallKey]
    cursor: Cursor


@dataclass(frozen=True)
class _Lane:
    table: sa.Table
    age: sa.Column[Any]
    where: Callable[[datetime], sa.ColumnElement[bool]]


def _after(lane: _Lane, cursor: Cursor | None, index: int) -> sa.ColumnElement[bool]:
    if cursor is None or cursor.lane != index:
        return sa.true()
    key = lane.table.c.id
    return sa.or_(lane.age > cursor.at, sa.and_(lane.age == cursor.at, key > cursor.id))


def _purgeable_call(cutoff: datetime) -> sa.ColumnElement[bool]:
    """A job row of a call that may go: finished, old, and nothing of its call still to do."""
    other = JOBS.alias("other")
    same_call = sa.and_(
        other.c.tenant_id == JOBS.c.tenant_id,
        other.c.correlation_id == JOBS.c.correlation_id,
        other.c.kind.in_(list(CALL_KINDS)),
    )
    alive = sa.or_(other.c.status.not_in(FINISHED_JOBS), other.c.updated_at >= cutoff)
    callback_due = sa.and_(
        CALLBACKS.c.tenant_id == JOBS.c.tenant_id,
        CALLBACKS.c.conversation_id == JOBS.c.correlation_id,
        CALLBACKS.c.status == "scheduled",
    )
    callback_calling = sa.and_(
        OUTBOUND_CALLS.c.tenant_id == JOBS.c.tenant_id,
        OUTBOUND_CALLS.c.conversation_id == JOBS.c.correlation_id,
        OUTBOUND_CALLS.c.purpose == "callback",
        OUTBOUND_CALLS.c.status.not_in(FINISHED_CALLS),
    )
    return sa.and_(
        JOBS.c.kind.in_(list(CALL_KINDS)),
        JOBS.c.status.in_(FINISHED_JOBS),
        JOBS.c.updated_at < cutoff,
        ~sa.exists().where(same_call, alive),
        ~sa.exists().where(callback_due),
        ~sa.exists().where(callback_calling),
    )


def _job_lane(kind: str, status: str, *, calls: bool = False) -> _Lane:
    def where(cutoff: datetime) -> sa.ColumnElement[bool]:
        lane = sa.and_(JOBS.c.kind == kind, JOBS.c.status == status, JOBS.c.updated_at < cutoff)
        return sa.and_(lane, _purgeable_call(cutoff)) if calls else lane

    return _Lane(JOBS, JOBS.c.updated_at, where)


def _ended_calls(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        OUTBOUND_CALLS.c.updated_at < cutoff, OUTBOUND_CALLS.c.status.in_(FINISHED_CALLS)
    )


def _unmatched_events(cutoff: datetime) -> sa.ColumnElement[bool]:
    known = sa.exists().where(OUTBOUND_CALLS.c.id == CALL_EVENTS.c.call_id)
    return sa.and_(CALL_EVENTS.c.received_at < cutoff, ~known)


def _old_rejections(cutoff: datetime) -> sa.ColumnElement[bool]:
    return INTAKE_REJECTIONS.c.created_at < cutoff


class Sweep:
    """Finds and deletes one kind's records older than a cutoff (see the module docstring).

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(self, engine: sa.Engine, kind: Kind) -> None:
        self._engine = engine
        self.kind = kind
        self._lanes: list[_Lane] | None = None

    def lanes(self) -> list[_Lane]:
        """The index walks that find this kind's records, one per job kind and status."""
        if self._lanes is None:
            self._lanes = self._build_lanes()
        return self._lanes

    def _build_lanes(self) -> list[_Lane]:
        if self.kind == "calls":
            return [
                _job_lane(kind, status, calls=True)
                for kind in CALL_KINDS
                for status in FINISHED_JOBS
            ]
        if self.kind in ("completed_jobs", "failed_jobs"):
            with transaction(self._engine) as conn:
                kinds = sorted(conn.execute(sa.select(JOBS.c.kind).distinct()).scalars())
            status = "completed" if self.kind == "completed_jobs" else "failed"
            return [_job_lane(kind, status) for kind in kinds if kind not in CALL_KINDS]
        if self.kind == "outbound_calls":
            return [_Lane(OUTBOUND_CALLS, OUTBOUND_CALLS.c.updated_at, _ended_calls)]
        if self.kind == "call_events":
            return [_Lane(CALL_EVENTS, CALL_EVENTS.c.received_at, _unmatched_events)]
        return [_Lane(INTAKE_REJECTIONS, INTAKE_REJECTIONS.c.created_at, _old_rejections)]

    def count(self, cutoff: datetime) -> int:
        """How many records (calls, for ``calls``) are older than ``cutoff`` and may go."""
        with transaction(self._engine) as conn:
            if self.kind == "calls":
                pairs = (
                    sa.select(JOBS.c.tenant_id, JOBS.c.correlation_id)
                    .where(_purgeable_call(cutoff))
                    .distinct()
                    .subquery()
                )
                return int(conn.execute(sa.select(sa.func.count()).select_from(pairs)).scalar_one())
            total = 0
            for lane in self.lanes():
                query = sa.select(sa.func.count()).select_from(lane.table).where(lane.where(cutoff))
                total += int(conn.execute(query).scalar_one())
            return total

    def next_batch(self, cutoff: datetime, after: Cursor | None, size: int) -> Batch | None:
        """The next ``size`` records older than ``cutoff`` after ``after``, oldest first."""
        lanes = self.lanes()
        start = after.lane if after is not None else 0
        with transaction(self._engine) as conn:
            for index in range(start, len(lanes)):
                lane = lanes[index]
                table = lane.table
                columns: list[Any] = [table.c.id, lane.age]
                if table is JOBS:
                    columns += [JOBS.c.tenant_id, JOBS.c.correlation_id]
                query = (
                    sa.select(*columns)
                    .where(lane.where(cutoff), _after(lane, after, index))
                    .order_by(lane.age, table.c.id)
                    .limit(size)
                )
                rows = conn.execute(query).all()
                if rows:
                    last = rows[-1]
                    calls = (
                        sorted({CallKey(row[2], row[3]) for row in rows})
                        if self.kind == "calls"
                        else []
                    )
                    return Batch([row[0] for row in rows], calls, Cursor(index, last[1], last[0]))
        return None

    def delete(self, batch: Batch, cutoff: datetime, *, dry_run: bool) -> Tally:
        """Delete (count, in a dry run) the batch's records that still qualify."""
        with transaction(self._engine) as conn:
            if self.kind == "calls":
                still = sa.select(JOBS.c.tenant_id, JOBS.c.correlation_id).where(
                    call_jobs(batch.calls), _purgeable_call(cutoff)
                )
                keys = sorted({CallKey(row[0], row[1]) for row in conn.execute(still)})
                calls = delete_call_rows(conn, keys, dry_run=dry_run)
                calls["calls"] += len(keys)
                return +calls
            lane = self.lanes()[batch.cursor.lane]
            where = sa.and_(lane.table.c.id.in_(batch.ids), lane.where(cutoff))
            tally: Tally = Counter()
            if lane.table is JOBS:
                ids = sa.select(JOBS.c.id).where(where).scalar_subquery()
                steps = JOB_MESSAGES.c.job_id.in_(ids)
                tally["job steps"] += remove(conn, JOB_MESSAGES, steps, dry_run=dry_run)
                tally["jobs"] += remove(conn, JOBS, where, dry_run=dry_run)
            elif lane.table is OUTBOUND_CALLS:
                tally += delete_outbound_calls(conn, where, dry_run=dry_run)
            elif lane.table is CALL_EVENTS:
                tally["call events"] += remove(conn, CALL_EVENTS, where, dry_run=dry_run)
            else:
                tally["intake rejections"] += remove(
                    conn, INTAKE_REJECTIONS, where, dry_run=dry_run
                )
            return +tally
