"""Time recording a fan-out: one message reporting N children, on SQLite or PostgreSQL.

The report runs under the job's row lock (every sibling's report waits for it), so its
cost bounds how fast a large fan-out (a daily-calls tick with thousands of users) can
start making progress. Run:
``.venv/bin/python -m benchmarks.fan_out_progress [--children 10000] [--url URL]``
(default: a SQLite file in a temporary directory; pass an empty PostgreSQL database URL
to measure PostgreSQL).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from contracts import PostCallJobData
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.progress import SqlJobProgress
from infra.store.records import InboxEntry, MessageRef
from infra.store.tenants import SqlTenantDirectory


def measure(url: str, children: int) -> float:
    """Seconds one message takes to report ``children`` children."""
    upgrade(url)
    engine = create_engine(url)
    try:
        tenant, _ = SqlTenantDirectory(engine).add_tenant(f"bench-{time.monotonic_ns()}")
        job = PostCallJobData(
            job_id=f"fan-{time.monotonic_ns()}",
            tenant_id=tenant.id,
            conversation_id="tick",
            agent_id="bench",
        )
        SqlJobLedger(engine).accept(
            InboxEntry(
                source="bench",
                external_id=job.job_id,
                tenant_id=tenant.id,
                kind="bench",
                contract=job,
            )
        )
        progress = SqlJobProgress(engine)
        root = MessageRef(job.idempotency_key, "fetch_transcript", 0)
        progress.message_started(job.job_id, root)
        refs = [MessageRef(f"user-call:{n}", "place_call", 1) for n in range(children)]
        started = time.monotonic()
        progress.message_succeeded(job.job_id, root, children=refs)
        return time.monotonic() - started
    finally:
        engine.dispose()


def main() -> None:
    """Command line: one measurement, printed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=10_000, help="Children reported.")
    parser.add_argument("--url", help="Database URL (default: a temporary SQLite file).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-fanout-") as workdir:
        url = args.url or f"sqlite:///{Path(workdir) / 'fanout.db'}"
        seconds = measure(url, args.children)
    print(f"{args.children} children recorded in {seconds:.2f} s")


if __name__ == "__main__":
    main()
