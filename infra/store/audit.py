"""The audit log: who replayed, edited or purged what, when, why, and what came of it.

Append-only: this module inserts and reads; nothing in the code base updates or deletes
an ``audit_log`` row. An entry is written after the action was tried, with its outcome
(``done``, ``not found`` …), so a failed action is on record too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from infra.store.engine import transaction
from infra.store.jobs import utc_now
from infra.store.tables import AUDIT_LOG

ACTIONS = ("replay", "edit", "purge", "forget", "retention")
"""Every action the audit log records."""

MAX_REASON_CHARS = 500
"""Longest reason a change may give (the CLI, the API and the console refuse longer)."""


@dataclass(frozen=True)
class AuditEntry:
    """One operator action.

    Attributes:
        at: When (UTC).
        actor: Who: a named admin token, or the CLI operator (``--as NAME`` or the OS user).
        action: ``replay``, ``edit``, ``purge`` …
        target: What it acted on (a dead letter's message id …).
        queue: The target's queue, if any.
        job_id: The job the target belongs to, if any.
        reason: Why, in the operator's words.
        diff: For an edit, the payload's unified diff.
        outcome: What came of it.
        id: The entry's number (None before it is written).
    """

    at: datetime
    actor: str
    action: str
    target: str
    queue: str | None
    job_id: str | None
    reason: str
    diff: str | None
    outcome: str
    id: int | None = None


class SqlAudit:
    """The audit log in the SQL store.

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        reason: str,
        outcome: str,
        queue: str | None = None,
        job_id: str | None = None,
        diff: str | None = None,
    ) -> AuditEntry:
        """Append one entry, stamped now."""
        entry = AuditEntry(
            at=self._clock(),
            actor=actor,
            action=action,
            target=target,
            queue=queue,
            job_id=job_id,
            reason=reason,
            diff=diff,
            outcome=outcome,
        )
        values = {k: v for k, v in entry.__dict__.items() if k != "id"}
        with transaction(self._engine) as conn:
            new_id = conn.execute(sa.insert(AUDIT_LOG).values(values)).inserted_primary_key
        return AuditEntry(**values, id=int(new_id[0]) if new_id else None)

    def entries(
        self, *, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest entries first (of one target or action, when given)."""
        query = sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(AUDIT_LOG.c.target == target)
        if action is not None:
            query = query.where(AUDIT_LOG.c.action == action)
        with transaction(self._engine) as conn:
            return [
                AuditEntry(
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    target=row.target,
                    queue=row.queue,
                    job_id=row.job_id,
                    reason=row.reason,
                    diff=row.diff,
                    outcome=row.outcome,
                    id=row.id,
                )
                for row in conn.execute(query)
            ]
