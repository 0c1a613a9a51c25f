"""Metrics the processes of one role share through files (multiprocess mode).

gunicorn runs the API in several worker processes and Dramatiq the pipeline steps in
several worker processes; each process counts in memory-mapped files of its own
(``counter_<pid>.db``, ``histogram_<pid>.db``…) in one directory per role
(``<data_dir>/metrics/api``, ``<data_dir>/metrics/worker``), and whoever serves
``/metrics`` adds them up at scrape time (``exposition``). So:

- the parent (gunicorn's master, Dramatiq's main process) calls ``start_fresh`` before
  it forks: files left by a previous run would otherwise be counted again, and the
  children inherit the directory;
- when a child dies its gauges must stop counting: ``mark_dead`` drops its files of
  them (gunicorn's ``child_exit``; ``sweep_dead`` after a worker group died; Dramatiq's
  own middleware drops the live ones at each worker process's shutdown). Its counters
  and histograms stay: what it counted happened;
- prometheus_client picks memory or files once, when ``prometheus_client.values`` is
  first imported, from ``PROMETHEUS_MULTIPROC_DIR``; a module imported before the
  parent knows its directory would fix it to memory, and every child would count where
  no scrape looks (FIELD-NOTES). ``enable`` switches it to files for the metrics created
  afterwards.

The scheduler is one process: it serves its registry directly and writes no files.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from infra.pids import pid_alive

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus_client writes, and where a forked child finds the directory."""


def metrics_dir(data_dir: Path, role: str) -> Path:
    """The multiprocess directory of a role (``api``, ``worker``) under the data dir."""
    return (data_dir / "metrics" / role).resolve()


def clean(directory: Path) -> None:
    """Empty the directory, creating it when missing."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def enable(directory: Path) -> None:
    """Count in files under ``directory``, in this process and the children it forks.

    Metrics created before this call keep counting in memory; create them after.
    """
    # Not configuration: the channel prometheus_client (and Dramatiq's middleware) read
    # the directory from, in this process and in every child it forks.
    os.environ[DIRECTORY_VARIABLE] = str(directory)  # noqa: TID251
    # prometheus_client chose its value class when it was first imported; metrics
    # look the class up each time they create a value, so replacing it is enough.
    if not values.ValueClass._multiprocess:
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def start_fresh(directory: Path) -> None:
    """What a parent does before it forks: an empty directory, and files enabled."""
    clean(directory)
    enable(directory)


def exposition(*directories: Path) -> tuple[str, bytes]:
    """The metrics added up over every file in ``directories``: (content type, body).

    Each directory holds metrics of its own names (the API's workers', its edge's); one
    that does not exist (yet) adds nothing.
    """
    registry = CollectorRegistry()
    for directory in directories:
        if directory.is_dir():
            MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return CONTENT_TYPE_LATEST, generate_latest(registry)


def mark_dead(pid: int, directory: Path) -> None:
    """Stop counting a dead child's gauges (its counters and histograms stay).

    prometheus_client drops its live gauges (``livesum``…); its gauges of mode ``all``
    (Dramatiq's ``dramatiq_delayed_messages_inprogress``: a series per pid) would show
    their last value for as long as the directory lives, so they go too.
    """
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    (directory / f"gauge_all_{pid}.db").unlink(missing_ok=True)


def sweep_dead(directory: Path) -> list[int]:
    """Mark dead every process whose files are here but which no longer runs.

    For a supervisor that restarts a process group killed with SIGKILL (no clean
    shutdown marked its processes dead): their live gauges stop counting. Returns the
    pids marked.
    """
    pids = {
        int(match[1])
        for path in directory.glob("*.db")
        if (match := _PID.search(path.name)) is not None
    }
    dead = [pid for pid in sorted(pids) if not pid_alive(pid)]
    for pid in dead:
        mark_dead(pid, directory)
    return dead


_PID = re.compile(r"_(\d+)\.db$")
