"""The audit log: append-only entries, newest first, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from infra.store.audit import SqlAudit
from tests.fakes import FixedClock

START = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def test_entries_are_appended_and_read_newest_first(engine: sa.Engine) -> None:
    clock = FixedClock(START)
    audit = SqlAudit(engine, clock=clock)

    first = audit.record(
        actor="ana",
        action="edit",
        target="msg-1",
        reason="fix the phone number",
        outcome="done",
        queue="calls.analyze",
        job_id="job-1",
        diff="-a\n+b",
    )
    clock.advance(timedelta(minutes=1))
    audit.record(actor="ana", action="replay", target="msg-1", reason="fixed", outcome="done")
    audit.record(actor="bo", action="purge", target="msg-2", reason="test data", outcome="done")

    assert first.id is not None
    assert [(e.action, e.target) for e in audit.entries()] == [
        ("purge", "msg-2"),
        ("replay", "msg-1"),
        ("edit", "msg-1"),
    ]
    [edit, *_] = audit.entries(action="edit")
    assert (edit.actor, edit.queue, edit.job_id, edit.diff, edit.at) == (
        "ana",
        "calls.analyze",
        "job-1",
        "-a\n+b",
        START,
    )
    assert [e.action for e in audit.entries(target="msg-1")] == ["replay", "edit"]
    assert len(audit.entries(limit=1)) == 1
