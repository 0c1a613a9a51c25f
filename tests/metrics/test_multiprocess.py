"""Several processes count in one directory; a scrape adds them up; a dead one's live gauges go.

The processes are real: each imports prometheus_client before it knows the directory
(as gunicorn's and Dramatiq's processes do), then ``enable`` switches it to files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.metrics.multiprocess import (
    DIRECTORY_VARIABLE,
    clean,
    exposition,
    mark_dead,
    sweep_dead,
)

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30

CHILD = """
import sys
from pathlib import Path

from infra.metrics.api import ApiMetrics
from infra.metrics.work import WorkMetrics
from infra.metrics.multiprocess import enable

enable(Path(sys.argv[1]))
work, api = WorkMetrics(), ApiMetrics()
for seconds in sys.argv[3:]:
    work.run_time.labels("calls.analyze", "analyze_call").observe(float(seconds))
    work.outbound_request("call", "sent")
api.in_progress.inc()
print("counted", flush=True)
if sys.argv[2] == "stay":
    sys.stdin.read()
"""


def samples(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a scrape of ``directory`` answers, by name and labels."""
    _, body = exposition(directory)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def count(directory: Path, mode: str, *observations: float) -> subprocess.Popen[str]:
    """A process that counts ``observations`` and one request in progress; ``stay``s or exits."""
    env = {k: v for k, v in os.environ.items() if k != DIRECTORY_VARIABLE}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), mode, *map(str, observations)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "counted"
    return process


def counted_and_exited(directory: Path, *observations: float) -> int:
    """A process that counts ``observations`` and exits; its pid."""
    process = count(directory, "exit", *observations)
    process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0
    return process.pid


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    path = tmp_path / "metrics"
    clean(path)
    return path


@pytest.fixture
def staying(directory: Path) -> Iterator[subprocess.Popen[str]]:
    process = count(directory, "stay", 0.2, 3.0)
    try:
        yield process
    finally:
        process.communicate(timeout=TIMEOUT_S)


def test_two_processes_histograms_and_counters_are_added_up_at_scrape_time(
    directory: Path, staying: subprocess.Popen[str]
) -> None:
    counted_and_exited(directory, 0.02)

    scraped = samples(directory)

    labels = (("actor", "analyze_call"), ("queue", "calls.analyze"))
    assert scraped[("switchboard_message_run_seconds_count", labels)] == 3
    assert scraped[("switchboard_message_run_seconds_sum", labels)] == pytest.approx(3.22)
    assert (
        scraped[
            ("switchboard_message_run_seconds_bucket", (*labels[:1], ("le", "0.25"), *labels[1:]))
        ]
        == 2
    )
    outbound = (("channel", "call"), ("outcome", "sent"))
    assert scraped[("switchboard_outbound_requests_total", outbound)] == 3
    # One file of each kind per process: both counted in files, not in memory.
    assert sorted(p.name.split("_")[0] for p in directory.glob("histogram_*.db")) == [
        "histogram",
        "histogram",
    ]


def test_a_dead_processs_live_gauge_stops_counting_once_it_is_marked_dead(
    directory: Path, staying: subprocess.Popen[str]
) -> None:
    exited = counted_and_exited(directory, 0.5)
    in_progress = ("switchboard_http_requests_in_progress", ())
    assert samples(directory)[in_progress] == 2

    mark_dead(exited, directory)

    scraped = samples(directory)
    assert scraped[in_progress] == 1
    # What it counted happened: its histogram stays.
    labels = (("actor", "analyze_call"), ("queue", "calls.analyze"))
    assert scraped[("switchboard_message_run_seconds_count", labels)] == 3


def test_cleaning_drops_a_previous_runs_files(directory: Path) -> None:
    counted_and_exited(directory, 1.0)
    assert list(directory.glob("*.db"))

    clean(directory)

    assert list(directory.iterdir()) == []
    assert samples(directory) == {}


def test_sweeping_marks_only_processes_that_no_longer_run(tmp_path: Path) -> None:
    gone_pid = _exited_pid()
    for name in (
        f"gauge_livesum_{gone_pid}.db",
        f"gauge_all_{gone_pid}.db",
        f"counter_{gone_pid}.db",
        f"gauge_livesum_{os.getpid()}.db",
        f"gauge_all_{os.getpid()}.db",
    ):
        (tmp_path / name).write_bytes(b"")

    assert sweep_dead(tmp_path) == [gone_pid]

    left = sorted(path.name for path in tmp_path.iterdir())
    # Its gauges go (live and per-pid); its counter keeps counting; a running process is
    # untouched.
    assert left == sorted(
        [
            f"counter_{gone_pid}.db",
            f"gauge_livesum_{os.getpid()}.db",
            f"gauge_all_{os.getpid()}.db",
        ]
    )


def _exited_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
