"""Command lines of the stack's processes, shared by the CLI commands and the demo.

The api command runs the edge (``infra.edge``), which starts gunicorn behind it. gunicorn
names the WSGI app as a string (``producers.wsgi:application()``) and the worker its
setup function (``actors.worker:setup``): infra never imports the processes it starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import infra

API_APP = "producers.wsgi:application()"
"""The gunicorn application: a factory call evaluated in each worker."""

WORKER_SETUP = "actors.worker:setup"
"""The dramatiq setup callable: the worker's composition root."""


def gunicorn_config() -> Path:
    """The packaged gunicorn configuration file (works from any cwd and when installed)."""
    return Path(infra.__file__).resolve().parent / "deploy" / "gunicorn.conf.py"


def api_argv(*, host: str, port: int, workers: int, threads: int) -> list[str]:
    """The API: the edge on ``host:port``, which reads requests whole, and gunicorn behind it."""
    return [
        sys.executable,
        "-m",
        "infra.edge",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def gunicorn_argv(*, bind: str, workers: int, threads: int) -> list[str]:
    """The gunicorn command serving the producers on ``bind``, behind the edge.

    The edge opens each connection with a PROXY protocol v1 line naming the client, so
    gunicorn reads it (``--proxy-protocol v1``) and logs the client's address.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(gunicorn_config()),
        "--bind",
        bind,
        "--proxy-protocol",
        "v1",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        API_APP,
    ]


KEEP_METRICS = "--keep-metrics"
"""Tells ``python -m actors`` not to empty the metrics directory (``actors.worker``)."""


def worker_argv(
    *,
    processes: int,
    threads: int,
    shutdown_timeout_s: float | None = None,
    keep_metrics: bool = False,
) -> list[str]:
    """The dramatiq worker running the registered actors, with our logging.

    On SIGTERM it starts no new step, gives the steps running ``shutdown_timeout_s`` to
    finish (None: Dramatiq's 600 s), then puts back what it had fetched but not started.
    """
    timeout = (
        []
        if shutdown_timeout_s is None
        else ["--worker-shutdown-timeout", str(int(shutdown_timeout_s * 1000))]
    )
    return [
        sys.executable,
        "-m",
        "actors",
        *([KEEP_METRICS] if keep_metrics else []),
        WORKER_SETUP,
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        *timeout,
    ]


def scheduler_argv() -> list[str]:
    """The scheduler process."""
    return [sys.executable, "-m", "scheduler"]
