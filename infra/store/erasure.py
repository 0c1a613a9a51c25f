"""Deleting one call's or one user's rows, on request (``forget``) or when they expire.

The one definition of what a call owns in the SQL store, shared by ``switchboard
forget call`` and by retention (``infra.store.retention``). A call is keyed by
(tenant, conversation id) and owns:

- its jobs (kinds ``post_call`` and ``health_check``, correlated by the conversation
  id), whose first payload holds the webhook's transcript, and their step rows;
- its call log (summary, topics, analysis), health answers and callback;
- the callback calls placed for it (outbound calls of purpose ``callback``) and their
  telephony status events.

A user owns their row, their daily calls and those calls' status events. Their
vectors are in the vector index (``infra.call_vectors``), their dead letters in the
broker (``infra.erasure``). The audit log is never touched here.

Functions taking a connection run inside the caller's transaction; ``dry_run`` counts
what would go under the same conditions and deletes nothing. Counts are rows per
``Tally`` label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from infra.store.calls import CALL_KINDS
from infra.store.engine import transaction
from infra.store.tables import (
    CALL_EVENTS,
    CALL_LOGS,
    CALLBACKS,
    HEALTH_ANSWERS,
    INTAKE_REJECTIONS,
    JOB_MESSAGES,
    JOBS,
    OUTBOUND_CALLS,
    TENANTS,
    USERS,
)

Tally = Counter[str]
"""Rows deleted (or, in a dry run, that would be) per label: ``jobs``, ``job steps`` …"""

LABELS = (
    "users",
    "jobs",
    "job steps",
    "call logs",
    "health answers",
    "callbacks",
    "outbound calls",
    "call events",
    "intake rejections",
    "vectors",
    "dead letters",
)
"""Every ``Tally`` label, in the order people are shown them."""


def described(tally: Tally) -> str:
    """``jobs 2, job steps 9, …``: the non-zero counts in ``LABELS`` order."""
    order = {label: n for n, label in enumerate(LABELS)}
    counts = sorted(
        ((label, n) for label, n in tally.items() if n), key=lambda item: order.get(item[0], 99)
    )
    return ", ".join(f"{label} {n}" for label, n in counts)


FINISHED_JOBS = ("completed", "failed")
"""Job statuses nothing will change any more (a replay may revive a failed one)."""


class CallKey(NamedTuple):
    """A call: the tenant and the voice platform's conversation id."""

    tenant_id: str
    conversation_id: str


@dataclass(frozen=True)
class UserAnchor:
    """What erasing a user needs to know about them.

    Attributes:
        user_id: The user's id.
        tenant_id: Their tenant.
        phone: Their number (E.164): calls from or to it are theirs too.
        tenant_name: Their tenant's name, for the commands a person is told to run.
    """

    user_id: str
    tenant_id: str
    phone: str
    tenant_name: str = ""


CHUNK = 500
"""Values per ``IN (...)`` list: well under SQLite's bound-parameter limit."""


def remove(conn: sa.Connection, table: sa.Table, where: Any, *, dry_run: bool) -> int:
    """Delete the rows of ``table`` matching ``where`` (count them in a dry run)."""
    if dry_run:
        count = sa.select(sa.func.count()).select_from(table).where(where)
        return int(conn.execute(count).scalar_one())
    return int(conn.execute(sa.delete(table).where(where)).rowcount)


def remove_ids(
    conn: sa.Connection, table: sa.Table, column: str, ids: Sequence[Any], *, dry_run: bool
) -> int:
    """Delete the rows whose ``column`` is one of ``ids``, a list at a time, on its index."""
    return sum(
        remove(conn, table, table.c[column].in_(ids[start : start + CHUNK]), dry_run=dry_run)
        for start in range(0, len(ids), CHUNK)
    )


def keyed_by(
    tenant: sa.ColumnElement[Any], conversation: sa.ColumnElement[Any], keys: Sequence[CallKey]
) -> sa.ColumnElement[bool]:
    """``(tenant, conversation)`` is one of ``keys``: per tenant, so an index serves it."""
    by_tenant: dict[str, list[str]] = {}
    for key in keys:
        by_tenant.setdefault(key.tenant_id, []).append(key.conversation_id)
    return sa.or_(
        sa.false(),
        *(
            sa.and_(tenant == tenant_id, conversation.in_(conversations))
            for tenant_id, conversations in by_tenant.items()
        ),
    )


def call_job_rows(conn: sa.Connection, keys: Sequence[CallKey]) -> list[Any]:
    """The jobs of these calls (``id``, ``tenant_id``, ``correlation_id``, ``status``, …).

    Selected by conversation id alone, on its index, and matched to the tenant here: a
    plan that cannot turn into a walk over every job of the tenant (SQLite, without
    statistics, may pick the tenant's index when both are in the query).
    """
    wanted = set(keys)
    conversations = sorted({key.conversation_id for key in keys})
    columns = (JOBS.c.id, JOBS.c.tenant_id, JOBS.c.correlation_id, JOBS.c.status, JOBS.c.updated_at)
    rows: list[Any] = []
    for start in range(0, len(conversations), CHUNK):
        query = sa.select(*columns).where(
            JOBS.c.correlation_id.in_(conversations[start : start + CHUNK]),
            JOBS.c.kind.in_(list(CALL_KINDS)),
        )
        rows += [
            row
            for row in conn.execute(query)
            if CallKey(row.tenant_id, row.correlation_id) in wanted
        ]
    return rows


def delete_jobs(conn: sa.Connection, job_ids: Sequence[str], *, dry_run: bool) -> Tally:
    """Delete these jobs and their step rows."""
    tally: Tally = Counter()
    tally["job steps"] += remove_ids(conn, JOB_MESSAGES, "job_id", job_ids, dry_run=dry_run)
    tally["jobs"] += remove_ids(conn, JOBS, "id", job_ids, dry_run=dry_run)
    return tally


def delete_outbound_calls(conn: sa.Connection, where: Any, *, dry_run: bool) -> Tally:
    """Delete the outbound calls matching ``where`` and their status events."""
    tally: Tally = Counter()
    ids = list(conn.execute(sa.select(OUTBOUND_CALLS.c.id).where(where)).scalars())
    tally["call events"] += remove_ids(conn, CALL_EVENTS, "call_id", ids, dry_run=dry_run)
    tally["outbound calls"] += remove_ids(conn, OUTBOUND_CALLS, "id", ids, dry_run=dry_run)
    return tally


def delete_call_rows(
    conn: sa.Connection, keys: Sequence[CallKey], *, dry_run: bool, callback_calls: bool = True
) -> Tally:
    """Delete every row the calls own (see the module docstring); count them.

    ``callback_calls=False`` leaves the callback calls placed for them and their status
    events: retention deletes those as outbound calls, by their own age.
    """
    if not keys:
        return Counter()
    tally = delete_jobs(conn, [row.id for row in call_job_rows(conn, keys)], dry_run=dry_run)
    for label, table in (
        ("call logs", CALL_LOGS),
        ("health answers", HEALTH_ANSWERS),
        ("callbacks", CALLBACKS),
    ):
        where = keyed_by(table.c.tenant_id, table.c.conversation_id, keys)
        tally[label] += remove(conn, table, where, dry_run=dry_run)
    if callback_calls:
        placed = sa.and_(
            OUTBOUND_CALLS.c.purpose == "callback",
            keyed_by(OUTBOUND_CALLS.c.tenant_id, OUTBOUND_CALLS.c.conversation_id, keys),
        )
        tally += delete_outbound_calls(conn, placed, dry_run=dry_run)
    return tally


class SqlErasure:
    """Erasing one call or one user from the SQL store, each in one transaction.

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def jobs_in_flight(self, key: CallKey) -> list[str]:
        """Ids of the call's jobs still queued or processing (its pipeline would redo rows)."""
        with transaction(self._engine) as conn:
            rows = call_job_rows(conn, [key])
        return sorted(row.id for row in rows if row.status not in FINISHED_JOBS)

    def delete_call(self, key: CallKey) -> Tally:
        """Delete the call's rows and the intake rejections of its conversation id.

        Rejections carry no tenant (their agent was unknown), so every rejection of the
        conversation id goes.
        """
        with transaction(self._engine) as conn:
            tally = delete_call_rows(conn, [key], dry_run=False)
            tally["intake rejections"] += remove(
                conn,
                INTAKE_REJECTIONS,
                INTAKE_REJECTIONS.c.external_id == key.conversation_id,
                dry_run=False,
            )
        return +tally

    def user(self, user_id: str) -> UserAnchor | None:
        """The user, or None when there is none (any more)."""
        query = (
            sa.select(USERS.c.id, USERS.c.tenant_id, USERS.c.phone, TENANTS.c.name)
            .join(TENANTS, TENANTS.c.id == USERS.c.tenant_id)
            .where(USERS.c.id == user_id)
        )
        with transaction(self._engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else UserAnchor(row.id, row.tenant_id, row.phone, row.name)

    def calls_of_number(self, tenant_id: str, phone: str) -> list[CallKey]:
        """The tenant's calls from or to ``phone``: their jobs' caller number, or callbacks'.

        A scan of the tenant's call jobs (the number is inside the payload): an erasure
        request is rare, and the number is not worth an index of its own.
        """
        caller = JOBS.c.payload["caller_number"].as_string()
        from_jobs = sa.select(JOBS.c.tenant_id, JOBS.c.correlation_id).where(
            JOBS.c.tenant_id == tenant_id, JOBS.c.kind.in_(list(CALL_KINDS)), caller == phone
        )
        from_callbacks = sa.select(CALLBACKS.c.tenant_id, CALLBACKS.c.conversation_id).where(
            CALLBACKS.c.tenant_id == tenant_id, CALLBACKS.c.phone == phone
        )
        with transaction(self._engine) as conn:
            rows = conn.execute(sa.union(from_jobs, from_callbacks)).all()
        return sorted(CallKey(row[0], row[1]) for row in rows)

    def others_with_number(self, user: UserAnchor) -> list[str]:
        """The ids of the tenant's other users who have the same number, sorted."""
        query = sa.select(USERS.c.id).where(
            USERS.c.tenant_id == user.tenant_id,
            USERS.c.phone == user.phone,
            USERS.c.id != user.user_id,
        )
        with transaction(self._engine) as conn:
            return sorted(conn.execute(query).scalars())

    def delete_user(self, user_id: str) -> Tally:
        """Delete the user's daily calls, their status events and the user's row.

        The user's row is locked first (on PostgreSQL), so a tick claiming their call
        at the same moment waits, and no call row is left pointing at a deleted user.
        """
        with transaction(self._engine) as conn:
            locked = sa.select(USERS.c.id).where(USERS.c.id == user_id)
            if conn.dialect.name == "postgresql":
                locked = locked.with_for_update()
            if conn.execute(locked).first() is None:
                return Counter()
            tally = delete_outbound_calls(conn, OUTBOUND_CALLS.c.user_id == user_id, dry_run=False)
            tally["users"] += remove(conn, USERS, USERS.c.id == user_id, dry_run=False)
        return +tally
