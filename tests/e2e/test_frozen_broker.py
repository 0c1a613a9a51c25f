"""Intake with the broker frozen (SIGSTOP of the embedded Valkey), end to end.

A refused connection fails in microseconds; a frozen broker holds every call for the
full socket timeout. The whole stack runs as real processes (``benchmarks.frozen_broker``
starts it; ``python -m benchmarks.frozen_broker`` measures the same thing at scale).
Bounds here are loose enough for a busy CI machine; the README gives measured figures.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.frozen_broker import measure
from benchmarks.stack import local_stack

pytestmark = pytest.mark.e2e


def test_a_burst_of_webhooks_is_answered_fast_while_the_broker_is_frozen_and_completes_after(
    tmp_path: Path,
) -> None:
    with local_stack(tmp_path, Console(file=io.StringIO())) as local:
        # Longer than the 5 s socket timeout: the dispatcher, the relay, the consumers
        # and the probes all run into it while the burst is answered.
        outage = measure(local, burst=24, sustained=24, concurrency=8, hold_s=7)

    assert outage.statuses == {202: 48}
    assert max(outage.latencies_s) < 1.0, sorted(outage.latencies_s)[-5:]
    assert outage.healthz_failures == 0
    assert max(outage.healthz_s) < 1.0
    assert (outage.readyz["status"], outage.readyz_s < 1.0) == ("degraded", True)
    checks = outage.readyz["checks"]
    assert isinstance(checks, dict)
    assert (checks["database"]["ok"], checks["broker"]["ok"]) == (True, False)
    assert outage.recovered_s is not None, f"calls did not complete after the thaw: {local.logs}"
    assert outage.recovered_s < 20
    assert sum(outage.outage_lines.values()) < 80, outage.outage_lines
