"""Time a purge: old tick jobs and old calls deleted in batches, new ones left, on SQL.

Loads ``--jobs`` completed tick jobs (three step rows each), ``--calls`` completed
calls (a step row, a call log and six vectors in the local SQL index each) and
``--outbound`` ended outbound calls (two status events each), all a year old, plus a
tenth as many of each written today; then times ``Retention.run`` with a 30-day rule,
as ``switchboard purge --older-than 30`` runs it, and checks the new records are all
still there. With ``--explain`` (PostgreSQL) it prints the plan of each kind's first
batch query, and of a later one (after a cursor), first. Run:
``.venv/bin/python -m benchmarks.retention_purge [--jobs 100000] [--calls 10000]
[--outbound 50000] [--url URL] [--explain]``
(default: a SQLite file in a temporary directory; pass an empty PostgreSQL database URL
to measure PostgreSQL).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from contracts.values import summary_vector_id, tenant_namespace, transcript_vector_id
from infra.retention import LABELS, Retention, uniform_rules
from infra.store.audit import SqlAudit
from infra.store.engine import create_engine, transaction
from infra.store.erasure import described
from infra.store.migrate import upgrade
from infra.store.retention import KINDS, Cursor, Kind, Sweep
from infra.store.tables import (
    CALL_EVENTS,
    CALL_LOGS,
    JOB_MESSAGES,
    JOBS,
    OUTBOUND_CALLS,
    VECTORS,
)
from infra.store.tenants import SqlTenantDirectory
from infra.store.vectors import SqlVectorIndex

CHUNK = 5_000
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=365)


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _job(kind: str, at: datetime, tenant_id: str | None, correlation: str) -> dict[str, Any]:
    job_id = uuid.uuid4().hex
    return {
        "id": job_id,
        "source": "bench",
        "external_id": job_id,
        "dedupe_key": f"bench/{job_id}",
        "tenant_id": tenant_id,
        "kind": kind,
        "contract": "Bench",
        "payload": {"transcript": "x" * 200},
        "correlation_id": correlation,
        "status": "completed",
        "messages_total": 1,
        "messages_completed": 1,
        "created_at": at,
        "updated_at": at,
    }


def _step(job_id: str, n: int, at: datetime) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "key": f"{job_id}:{n}",
        "name": "place_user_call",
        "position": n,
        "status": "completed",
        "attempts": 1,
        "updated_at": at,
    }


def _outbound(tenant_id: str, at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    call_id = f"call_{uuid.uuid4().hex}"
    call = {
        "id": call_id,
        "tenant_id": tenant_id,
        "purpose": "callback",
        "conversation_id": f"conv_{uuid.uuid4().hex}",
        "attempt": 1,
        "phone": "+14155550100",
        "status": "completed",
        "created_at": at,
        "updated_at": at,
    }
    events = [
        {
            "event_key": uuid.uuid4().hex,
            "call_id": call_id,
            "status": status,
            "outcome": "applied",
            "payload": {"status": status},
            "received_at": at,
        }
        for status in ("ringing", "completed")
    ]
    return call, events


def _load(
    engine: sa.Engine, tenant_id: str, jobs: int, calls: int, outbound: int, at: datetime
) -> None:
    job_rows, step_rows, logs, vectors = [], [], [], []
    placed: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for _ in range(outbound):
        call, its_events = _outbound(tenant_id, at)
        placed.append(call)
        events += its_events
    for _ in range(jobs):
        job = _job("daily_calls", at, None, f"tick-{uuid.uuid4().hex}")
        job_rows.append(job)
        step_rows += [_step(job["id"], n, at) for n in range(3)]
    for _ in range(calls):
        conversation = f"conv_{uuid.uuid4().hex}"
        job = _job("post_call", at, tenant_id, conversation)
        job_rows.append(job)
        step_rows.append(_step(job["id"], 0, at))
        logs.append(
            {
                "tenant_id": tenant_id,
                "conversation_id": conversation,
                "agent_id": "bench",
                "job_id": job["id"],
                "summary": "s" * 200,
                "topics": ["billing"],
                "sentiment": "neutral",
                "analysis": {},
                "created_at": at,
                "updated_at": at,
            }
        )
        ids = [summary_vector_id(conversation)] + [
            transcript_vector_id(conversation, n) for n in range(5)
        ]
        vectors += [
            {
                "namespace": tenant_namespace(tenant_id),
                "id": vector_id,
                "kind": "summary",
                "values": [0.1] * 256,
                "metadata": {"conversation_id": conversation},
                "updated_at": at,
            }
            for vector_id in ids
        ]
    tables = (
        (JOBS, job_rows),
        (JOB_MESSAGES, step_rows),
        (CALL_LOGS, logs),
        (OUTBOUND_CALLS, placed),
        (CALL_EVENTS, events),
    )
    for table, rows in tables:
        for chunk in _chunks(rows):
            with transaction(engine) as conn:
                conn.execute(sa.insert(table), list(chunk))
    for chunk in _chunks(vectors):
        with transaction(engine) as conn:
            conn.execute(sa.insert(VECTORS), list(chunk))


class _Timer:
    """Progress that remembers when each kind started and last advanced."""

    def __init__(self) -> None:
        self.started: dict[Kind, float] = {}
        self.last: dict[Kind, float] = {}

    def start(self, kind: Kind, total: int) -> None:  # noqa: ARG002 (the port's signature)
        """Note the start."""
        self.started[kind] = self.last[kind] = time.monotonic()

    def advance(self, kind: Kind, records: int) -> None:  # noqa: ARG002 (the port's signature)
        """Note the progress."""
        self.last[kind] = time.monotonic()

    def seconds(self, kind: Kind) -> float:
        """From the start to the last batch."""
        return self.last.get(kind, 0.0) - self.started.get(kind, 0.0)


def _explain(engine: sa.Engine, cutoff: datetime) -> None:
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            print("--explain needs PostgreSQL")
            return
        conn.execute(sa.text("ANALYZE"))
        for kind in KINDS:
            sweep = Sweep(engine, kind)
            first = sweep.next_batch(cutoff, None, 500)
            for lane in range(len(sweep.lanes())):
                cursors: list[Cursor | None] = [None]
                if first is not None and first.cursor.lane == lane:
                    cursors.append(first.cursor)
                for cursor in cursors:
                    query = sweep.batch_query(cutoff, cursor, 500, lane)
                    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
                    plan = conn.execute(sa.text(f"EXPLAIN {compiled}")).scalars().all()
                    print(f"-- {kind}, lane {lane}{', after a cursor' if cursor else ''}:")
                    print("\n".join(f"   {line}" for line in plan))


def measure(url: str, jobs: int, calls: int, outbound: int, *, explain: bool) -> None:
    """Load, purge and print what went, how fast, and what stayed."""
    upgrade(url)
    engine = create_engine(url)
    try:
        tenant, _ = SqlTenantDirectory(engine).add_tenant(f"bench-{time.monotonic_ns()}")
        started = time.monotonic()
        _load(engine, tenant.id, jobs, calls, outbound, OLD)
        _load(engine, tenant.id, jobs // 10, calls // 10, outbound // 10, NOW)
        print(f"loaded in {time.monotonic() - started:.1f} s")
        rules = uniform_rules(30, NOW)
        if explain:
            _explain(engine, NOW - timedelta(days=30))
        retention = Retention(engine, SqlVectorIndex(engine), SqlAudit(engine), batch_size=500)
        started = time.monotonic()
        timer = _Timer()
        report = retention.run(rules, actor="bench", reason="benchmark", progress=timer)
        seconds = time.monotonic() - started
        for result in report.results:
            if result.records:
                kind = result.rule.kind
                print(
                    f"{LABELS[kind]}: {result.records} records in {timer.seconds(kind):.1f} s, "
                    f"{described(result.tally)}"
                )
        rows = report.total.total()
        print(f"purged {rows} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
        with transaction(engine) as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(JOBS)).scalar_one()
            calls_left = conn.execute(
                sa.select(sa.func.count()).select_from(OUTBOUND_CALLS)
            ).scalar_one()
        print(f"jobs left (written today): {left} of {jobs // 10 + calls // 10}")
        print(f"outbound calls left (written today): {calls_left} of {outbound // 10}")
    finally:
        engine.dispose()


def main() -> None:
    """Command line: one measurement, printed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="Old tick jobs.")
    parser.add_argument("--calls", type=int, default=10_000, help="Old calls.")
    parser.add_argument("--outbound", type=int, default=50_000, help="Old outbound calls.")
    parser.add_argument("--url", help="Database URL (default: a temporary SQLite file).")
    parser.add_argument("--explain", action="store_true", help="Print the batch query plans.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-purge-") as workdir:
        url = args.url or f"sqlite:///{Path(workdir) / 'purge.db'}"
        measure(url, args.jobs, args.calls, args.outbound, explain=args.explain)


if __name__ == "__main__":
    main()
