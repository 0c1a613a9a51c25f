"""Finished records older than a cutoff, found oldest first and deleted in batches.

One ``Sweep`` per kind of record (``KINDS``), each with its own cutoff:

- ``calls``: a call (``infra.store.erasure``), once every job of it is completed or
  failed and none moved since the cutoff, and no callback of it is still to place or
  under way; the callback calls placed for it go as outbound calls, by their own age;
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from infra.store.calls import CALL_KINDS
from infra.store.dialing import ENDED
from infra.store.engine import transaction
from infra.store.erasure import (
    CHUNK,
    FINISHED_JOBS,
    CallKey,
    Tally,
    call_job_rows,
    delete_call_rows,
    delete_jobs,
    delete_outbound_calls,
    keyed_by,
    remove_ids,
)
from infra.store.tables import (
    CALL_EVENTS,
    CALLBACKS,
    INTAKE_REJECTIONS,
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
    """One index walk: a table's records of one kind (and status) by age, oldest first."""

    table: sa.Table
    age: sa.Column[Any]
    statuses: tuple[str, ...] | None = None
    kind: str | None = None
    unmatched_events: bool = False

    def where(self, cutoff: datetime) -> sa.ColumnElement[bool]:
        """The lane's records older than ``cutoff``."""
        conditions: list[sa.ColumnElement[bool]] = [self.age < cutoff]
        if self.kind is not None:
            conditions.append(self.table.c.kind == self.kind)
        if self.statuses is not None:
            status = self.table.c.status
            # One status as an equality: the index then also yields the (age, id) order.
            one = len(self.statuses) == 1
            conditions.append(status == self.statuses[0] if one else status.in_(self.statuses))
        if self.unmatched_events:
            conditions.append(~sa.exists().where(OUTBOUND_CALLS.c.id == CALL_EVENTS.c.call_id))
        return sa.and_(*conditions)

    def still_old(self, conn: sa.Connection, ids: Sequence[Any], cutoff: datetime) -> list[Any]:
        """Those of ``ids`` that still qualify (a replay may have revived a job).

        Read by primary key alone and checked here: with the lane's conditions in the
        query, a planner without fresh statistics may walk the lane's index instead.
        """
        columns: list[Any] = [self.table.c.id, self.age]
        if self.statuses is not None:
            columns.append(self.table.c.status)
        still: list[Any] = []
        for start in range(0, len(ids), CHUNK):
            query = sa.select(*columns).where(self.table.c.id.in_(ids[start : start + CHUNK]))
            still += [
                row[0]
                for row in conn.execute(query)
                if row[1] < cutoff and (self.statuses is None or row[2] in self.statuses)
            ]
        return still


def _after(lane: _Lane, cursor: Cursor | None, index: int) -> sa.ColumnElement[bool]:
    if cursor is None or cursor.lane != index:
        return sa.true()
    # A row-value comparison, so the index seeks past the last record read instead of
    # walking again over every record earlier batches deleted (dead until a vacuum).
    key = lane.table.c.id
    return sa.tuple_(lane.age, key) > sa.tuple_(
        sa.literal(cursor.at, lane.age.type), sa.literal(cursor.id, key.type)
    )


def _job_lane(kind: str, status: str) -> _Lane:
    return _Lane(JOBS, JOBS.c.updated_at, statuses=(status,), kind=kind)


def _purgeable(conn: sa.Connection, keys: Sequence[CallKey], cutoff: datetime) -> list[CallKey]:
    """The calls among ``keys`` that may go now.

    A call may go when every job of it is completed or failed and none moved since the
    cutoff, no callback of it is still to place, and no callback call of it is still
    under way. Three plain queries on the batch's keys, each on an index.
    """
    if not keys:
        return []
    jobs = call_job_rows(conn, keys)
    alive = {
        CallKey(row.tenant_id, row.correlation_id)
        for row in jobs
        if row.status not in FINISHED_JOBS or row.updated_at >= cutoff
    }
    due = sa.select(CALLBACKS.c.tenant_id, CALLBACKS.c.conversation_id).where(
        keyed_by(CALLBACKS.c.tenant_id, CALLBACKS.c.conversation_id, keys),
        CALLBACKS.c.status == "scheduled",
    )
    calling = sa.select(OUTBOUND_CALLS.c.tenant_id, OUTBOUND_CALLS.c.conversation_id).where(
        keyed_by(OUTBOUND_CALLS.c.tenant_id, OUTBOUND_CALLS.c.conversation_id, keys),
        OUTBOUND_CALLS.c.purpose == "callback",
        OUTBOUND_CALLS.c.status.not_in(FINISHED_CALLS),
    )
    busy = {CallKey(row[0], row[1]) for query in (due, calling) for row in conn.execute(query)}
    found = {CallKey(row.tenant_id, row.correlation_id) for row in jobs}
    return sorted(found - alive - busy)


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
            return [_job_lane(kind, status) for kind in CALL_KINDS for status in FINISHED_JOBS]
        if self.kind in ("completed_jobs", "failed_jobs"):
            with transaction(self._engine) as conn:
                kinds = sorted(conn.execute(sa.select(JOBS.c.kind).distinct()).scalars())
            status = "completed" if self.kind == "completed_jobs" else "failed"
            return [_job_lane(kind, status) for kind in kinds if kind not in CALL_KINDS]
        if self.kind == "outbound_calls":
            return [_Lane(OUTBOUND_CALLS, OUTBOUND_CALLS.c.updated_at, statuses=FINISHED_CALLS)]
        if self.kind == "call_events":
            return [_Lane(CALL_EVENTS, CALL_EVENTS.c.received_at, unmatched_events=True)]
        return [_Lane(INTAKE_REJECTIONS, INTAKE_REJECTIONS.c.created_at)]

    def count(self, cutoff: datetime) -> int:
        """How many records (calls, for ``calls``) are older than ``cutoff``.

        For calls, an upper bound: a call whose jobs are old may still be kept (another
        job of it is recent, or its callback is still to place).
        """
        with transaction(self._engine) as conn:
            if self.kind == "calls":
                old = sa.or_(*(lane.where(cutoff) for lane in self.lanes()))
                pairs = (
                    sa.select(JOBS.c.tenant_id, JOBS.c.correlation_id)
                    .where(old)
                    .distinct()
                    .subquery()
                )
                return int(conn.execute(sa.select(sa.func.count()).select_from(pairs)).scalar_one())
            total = 0
            for lane in self.lanes():
                query = sa.select(sa.func.count()).select_from(lane.table).where(lane.where(cutoff))
                total += int(conn.execute(query).scalar_one())
            return total

    def batch_query(
        self, cutoff: datetime, after: Cursor | None, size: int, lane: int
    ) -> sa.Select[Any]:
        """The query reading the next batch of one lane (EXPLAIN it to see the index used)."""
        walk = self.lanes()[lane]
        table = walk.table
        columns: list[Any] = [table.c.id, walk.age]
        if table is JOBS:
            columns += [JOBS.c.tenant_id, JOBS.c.correlation_id]
        return (
            sa.select(*columns)
            .where(walk.where(cutoff), _after(walk, after, lane))
            .order_by(walk.age, table.c.id)
            .limit(size)
        )

    def next_batch(self, cutoff: datetime, after: Cursor | None, size: int) -> Batch | None:
        """The next ``size`` records older than ``cutoff`` after ``after``, oldest first."""
        start = after.lane if after is not None else 0
        with transaction(self._engine) as conn:
            for lane in range(start, len(self.lanes())):
                rows = conn.execute(self.batch_query(cutoff, after, size, lane)).all()
                if rows:
                    last = rows[-1]
                    calls: list[CallKey] = []
                    if self.kind == "calls":
                        found = sorted({CallKey(row[2], row[3]) for row in rows})
                        calls = _purgeable(conn, found, cutoff)
                    return Batch([row[0] for row in rows], calls, Cursor(lane, last[1], last[0]))
        return None

    def delete(self, batch: Batch, cutoff: datetime, *, dry_run: bool) -> Tally:
        """Delete (count, in a dry run) the batch's records that still qualify."""
        with transaction(self._engine) as conn:
            if self.kind == "calls":
                keys = _purgeable(conn, batch.calls, cutoff)
                # Its callback calls are outbound calls: they go by their own age, so a
                # dry run does not count them twice.
                calls = delete_call_rows(conn, keys, dry_run=dry_run, callback_calls=False)
                calls["calls"] += len(keys)
                return +calls
            lane = self.lanes()[batch.cursor.lane]
            table = lane.table
            ids = lane.still_old(conn, batch.ids, cutoff)
            tally: Tally = Counter()
            if table is JOBS:
                tally += delete_jobs(conn, ids, dry_run=dry_run)
            elif table is OUTBOUND_CALLS:
                tally += delete_outbound_calls(conn, OUTBOUND_CALLS.c.id.in_(ids), dry_run=dry_run)
            else:
                label = "call events" if table is CALL_EVENTS else "intake rejections"
                tally[label] += remove_ids(conn, table, "id", ids, dry_run=dry_run)
            return +tally
