"""Measure intake while the broker is frozen, and how fast calls flow after it thaws.

A broker that refuses connections fails fast; a frozen one (SIGSTOP, a network
blackhole, a long fork) holds every call for the full socket timeout (FIELD-NOTES).
This starts the whole stack on its own embedded Valkey (gunicorn API with its default
2 workers of 4 threads, a Dramatiq worker, the scheduler), warms it up, then:

1. freezes the Valkey with SIGSTOP;
2. sends a burst of concurrent signed webhooks, then more at a steady concurrency,
   timing every answer, while a poller times ``/healthz`` every 100 ms;
3. reads ``/readyz`` (the API should say ``degraded``, answering at once);
4. thaws the Valkey (SIGCONT) after ``hold_s`` and times how long until every call
   accepted during the outage has completed its pipeline;
5. counts the log lines every process wrote from the freeze to that moment.

Run: ``.venv/bin/python -m benchmarks.frozen_broker [--burst 24] [--sustained 200]``.
``tests/e2e/test_frozen_broker.py`` runs a small version with assertions.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from benchmarks.stack import LocalStack, local_stack, wait_completed


@dataclass
class Outage:
    """What one frozen-broker run measured."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    healthz_s: list[float] = field(default_factory=list)
    healthz_failures: int = 0
    readyz_s: float = 0.0
    readyz: dict[str, object] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    recovered_s: float | None = None
    log_lines: dict[str, int] = field(default_factory=dict)
    """Lines each process logged from the freeze to recovery (access logs included)."""
    outage_lines: dict[str, int] = field(default_factory=dict)
    """Of those, warnings, errors and traceback lines: what the outage itself cost."""

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the webhook answer times."""
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _poll_healthz(local: LocalStack, outage: Outage, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        started = time.monotonic()
        try:
            ok = local.client.get(f"{local.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        outage.healthz_s.append(time.monotonic() - started)
        outage.healthz_failures += not ok


def measure(
    local: LocalStack, *, burst: int, sustained: int, concurrency: int, hold_s: float
) -> Outage:
    """Freeze the broker, send webhooks, thaw it, and time the recovery."""
    warm = [local.post(f"warm_{n}")[2] for n in range(4)]
    if wait_completed(local, [j for j in warm if j], timeout_s=60) is None:
        raise RuntimeError(f"warm-up calls did not complete: see {local.logs}")
    outage = Outage()
    before = {name: len(lines) for name, lines in local.log_lines().items()}
    stop = threading.Event()
    poller = threading.Thread(target=_poll_healthz, args=(local, outage, stop), daemon=True)
    os.kill(local.valkey_pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    poller.start()
    try:
        names = [f"frozen_b{n}" for n in range(burst)]
        with ThreadPoolExecutor(burst) as pool:
            results = list(pool.map(local.post, names))
        names = [f"frozen_s{n}" for n in range(sustained)]
        with ThreadPoolExecutor(concurrency) as pool:
            results += list(pool.map(local.post, names))
        time.sleep(max(0.0, hold_s - (time.monotonic() - frozen_at)))
        started = time.monotonic()
        outage.readyz = local.client.get(f"{local.url}/readyz", timeout=10).json()
        outage.readyz_s = time.monotonic() - started
    finally:
        os.kill(local.valkey_pid, signal.SIGCONT)
    for status, elapsed, job_id in results:
        outage.statuses[status] += 1
        outage.latencies_s.append(elapsed)
        if job_id is not None:
            outage.accepted.append(job_id)
    outage.recovered_s = wait_completed(local, outage.accepted, timeout_s=120)
    stop.set()
    poller.join(5)
    for name, lines in local.log_lines().items():
        new = lines[before.get(name, 0) :]
        outage.log_lines[name] = len(new)
        outage.outage_lines[name] = sum(1 for line in new if _is_outage_line(line))
    return outage


_OUTAGE_MARKS = ("[warning", "[error", "[critical", "WARNING", "ERROR", "Traceback", '  File "')


def _is_outage_line(line: str) -> bool:
    return any(mark in line for mark in _OUTAGE_MARKS)


def report(outage: Outage, console: Console) -> None:
    """Print the measurements."""
    ms = 1000
    console.print(
        f"webhooks while frozen: {len(outage.latencies_s)}, statuses {dict(outage.statuses)}"
    )
    p50, p99 = outage.percentile(0.5) * ms, outage.percentile(0.99) * ms
    worst = max(outage.latencies_s) * ms
    console.print(f"  answer time p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
    console.print(
        f"/healthz while frozen: {len(outage.healthz_s)} probes, {outage.healthz_failures} failed,"
        f" max {max(outage.healthz_s, default=0) * ms:.1f} ms"
    )
    console.print(
        f"/readyz while frozen: {outage.readyz.get('status')} in {outage.readyz_s * ms:.1f} ms"
    )
    recovered = "never" if outage.recovered_s is None else f"{outage.recovered_s:.1f} s"
    console.print(f"all {len(outage.accepted)} accepted calls completed {recovered} after the thaw")
    console.print(f"log lines from the freeze to recovery: {outage.log_lines}")
    console.print(f"  of which warnings, errors and tracebacks: {outage.outage_lines}")


def main() -> None:
    """Command line: one run, printed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=24, help="Concurrent webhooks at once.")
    parser.add_argument("--sustained", type=int, default=200, help="Webhooks after the burst.")
    parser.add_argument("--concurrency", type=int, default=8, help="Of the sustained ones.")
    parser.add_argument("--hold", type=float, default=15.0, help="Seconds the broker stays frozen.")
    parser.add_argument("--keep", help="Keep the logs and database in this directory.")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="sb-frozen-") as temporary:
        workdir = Path(args.keep) if args.keep else Path(temporary)
        with local_stack(workdir, console) as local:
            outage = measure(
                local,
                burst=args.burst,
                sustained=args.sustained,
                concurrency=args.concurrency,
                hold_s=args.hold,
            )
        report(outage, console)
        if outage.latencies_s:
            console.print(f"mean answer {statistics.mean(outage.latencies_s) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
