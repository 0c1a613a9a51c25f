"""Measure post-call pipelines per second on the embedded stack (local adapters).

Starts the whole stack on its own Valkey and SQLite (``benchmarks.stack``), warms it
up, then sends ``--calls`` signed webhooks at ``--concurrency`` and times

- intake: webhooks answered per second;
- end to end: from the first webhook to the last of their pipelines completed (five
  steps each: transcript, analysis, indexing, persistence, callback when asked).

With local adapters no vendor throttle applies (they protect no vendor), so this is
the platform's own ceiling on this machine. Run:
``.venv/bin/python -m benchmarks.pipeline_throughput [--calls 400] [--threads 8]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from benchmarks.stack import local_stack, wait_completed


def main() -> None:
    """Command line: one run, printed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="Webhooks to send.")
    parser.add_argument("--concurrency", type=int, default=8, help="Webhooks in flight.")
    parser.add_argument("--threads", type=int, default=8, help="Worker threads.")
    args = parser.parse_args()
    console = Console()
    with (
        tempfile.TemporaryDirectory(prefix="sb-throughput-") as workdir,
        local_stack(Path(workdir), console, worker_threads=args.threads) as local,
    ):
        warm = [local.post(f"warm_{n}")[2] for n in range(8)]
        wait_completed(local, [j for j in warm if j], timeout_s=60)
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(local.post, [f"call_{n}" for n in range(args.calls)]))
        answered_s = time.monotonic() - started
        jobs = [job_id for _, _, job_id in results if job_id is not None]
        waited = wait_completed(local, jobs, timeout_s=600)
    if waited is None:
        console.print("the pipelines did not all complete within 10 minutes")
        return
    total_s = answered_s + waited
    console.print(f"{len(jobs)} of {args.calls} webhooks accepted in {answered_s:.1f} s")
    console.print(f"  intake: {len(jobs) / answered_s:.0f} webhooks/s")
    console.print(f"  end to end: {len(jobs) / total_s:.1f} pipelines/s ({total_s:.1f} s in all)")


if __name__ == "__main__":
    main()
