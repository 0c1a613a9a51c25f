"""gunicorn configuration of the Switchboard API (``switchboard api`` passes it with ``-c``).

gunicorn runs behind the edge (``infra.edge``), which reads each request whole before
forwarding it: bind (a private unix socket), the PROXY protocol, workers and threads
come from the command line the edge builds (``infra.cli.launch.gunicorn_argv``). Clients
(DB pool, Redis) are created in each worker after the fork: ``preload_app`` stays off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from infra.metrics.multiprocess import DIRECTORY_VARIABLE, mark_dead
from producers.gunicorn_logs import GunicornLogger
from producers.master_metrics import MasterMetrics
from producers.serving import install_problem_errors

# Requests gunicorn refuses itself (414, 400, 431) get problem+json, not an HTML page.
install_problem_errors()

worker_class = "gthread"
preload_app = False

# Webhook intake answers in milliseconds; a request still running after 30 s is stuck.
timeout = 30
graceful_timeout = 30
keepalive = 5

# gunicorn's lines (the master's, the workers', one per request) go through our logging,
# on stderr for the container runtime: JSON lines when the logs are JSON, like every
# other line of the process. The access log is on; GunicornLogger writes its fields.
logger_class = GunicornLogger
accesslog = "-"

# gunicorn >= 25.1 opens a control socket at one fixed per-user path
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl): a second instance (tests,
# `switchboard dev` beside a stack) unlinks the first's socket. We do not use gunicornc.
control_socket_disable = True

# A worker recycles after this many requests (with jitter, so they do not all restart
# together), bounding the damage of a slow leak.
max_requests = 10_000
max_requests_jitter = 1_000


# The API's /metrics, served by the master on SWITCHBOARD_API__PROMETHEUS_PORT from the
# workers' multiprocess files (producers.master_metrics). Nothing happens until on_starting.
_metrics = MasterMetrics()


def on_starting(server: Any) -> None:  # noqa: ARG001 (gunicorn's hook signature)
    """Before binding and forking: empty the workers' metrics directory and serve it."""
    _metrics.start()


def on_exit(server: Any) -> None:  # noqa: ARG001 (gunicorn's hook signature)
    """Stop serving metrics."""
    _metrics.stop()


def child_exit(server: Any, worker: Any) -> None:  # noqa: ARG001 (gunicorn's hook signature)
    """Drop a dead worker's live-gauge files when Prometheus runs in multiprocess mode."""
    # This file is read by gunicorn, not built from Settings; prometheus_client itself is
    # configured by this variable, so it is read here and nowhere else.
    directory = os.environ.get(DIRECTORY_VARIABLE)  # noqa: TID251
    if directory:
        mark_dead(worker.pid, Path(directory))
