"""``python -m infra.edge``: the API process, the edge in front of gunicorn (``switchboard api``).

1. Read the settings and configure logging, as the ``api`` process; count refusals and
   connections in ``<data_dir>/metrics/edge`` (``infra.metrics.edge``), emptied first.
2. Listen on ``--host:--port`` first: a port in use fails here, before gunicorn boots.
3. Start gunicorn (``infra.cli.launch.gunicorn_argv``) on a unix socket in a private
   directory (mode 0700, removed at exit, and by the next edge if this one is killed):
   nothing but the edge can reach it, so no client can skip the edge or forge the PROXY
   line that names it.
4. Serve until SIGTERM or SIGINT, or until gunicorn exits on its own (it failed to
   boot, or died): then stop the edge gracefully (``STOP_GRACE_S``), stop gunicorn
   (SIGTERM, then SIGKILL after ``GUNICORN_STOP_S``) and exit, 0 after a signal, 1
   when gunicorn went first.

Until gunicorn listens, requests are answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.cli.launch import gunicorn_argv
from infra.edge.limits import EdgeLimits
from infra.edge.server import EdgeServer
from infra.logs import configure_logging, get_logger
from infra.metrics.edge import EdgeMetrics
from infra.metrics.multiprocess import DIRECTORY_VARIABLE, metrics_dir, start_fresh
from infra.pids import pid_alive
from infra.settings import load_settings, process_environment

STOP_GRACE_S = 5.0
"""How long requests in progress may take to finish once the edge is told to stop."""

GUNICORN_STOP_S = 35.0
"""How long gunicorn may take to stop (its ``graceful_timeout`` is 30 s) before SIGKILL."""

WATCH_S = 0.2
"""How often the edge checks that gunicorn still runs."""

_log = get_logger("infra.edge")


def main(argv: list[str] | None = None) -> int:
    """Run the API: the edge on ``--host:--port``, gunicorn behind it; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m infra.edge", description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings, process="api")
    if settings.api.prometheus_port > 0:
        # Before the metrics are made: they count in files gunicorn's master serves.
        start_fresh(metrics_dir(settings.data_dir, "edge"))
    metrics = EdgeMetrics()
    with private_dir() as directory:
        upstream = directory / "gunicorn.sock"
        command = gunicorn_argv(bind=f"unix:{upstream}", workers=args.workers, threads=args.threads)
        server = EdgeServer(EdgeLimits.from_settings(settings.api), upstream, metrics)
        return asyncio.run(_serve(server, args, command))


async def _serve(server: EdgeServer, args: argparse.Namespace, command: list[str]) -> int:
    try:
        addresses = await server.start(args.host, args.port)
    except OSError as error:
        _log.error("cannot listen", host=args.host, port=args.port, error=str(error))
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # gunicorn's master names its own metrics directory; the edge's is not inherited.
    env = {k: v for k, v in process_environment().items() if k != DIRECTORY_VARIABLE}
    gunicorn = subprocess.Popen(command, env=env)  # noqa: S603 (our own command, no shell)
    _log.info("api listening", addresses=addresses, upstream=command[command.index("--bind") + 1])
    try:
        while gunicorn.poll() is None and not stopping.is_set():
            try:
                async with asyncio.timeout(WATCH_S):
                    await stopping.wait()
            except TimeoutError:
                continue
        await server.stop(STOP_GRACE_S)
    finally:
        code = await asyncio.to_thread(_stop, gunicorn)
    if stopping.is_set():
        return 0
    _log.error("gunicorn exited: stopping the api", exit_code=code)
    return 1


def _stop(gunicorn: subprocess.Popen[bytes]) -> int:
    """Stop gunicorn (SIGTERM, then SIGKILL); its exit code."""
    if gunicorn.poll() is None:
        gunicorn.terminate()
        try:
            return gunicorn.wait(GUNICORN_STOP_S)
        except subprocess.TimeoutExpired:
            _log.warning("gunicorn did not stop in time: killing it", timeout_s=GUNICORN_STOP_S)
            gunicorn.kill()
    return gunicorn.wait()


PRIVATE_PREFIX = "switchboard-api-"
"""The socket directories' prefix, followed by the owning edge's pid and a dash."""


@contextmanager
def private_dir(parent: Path | None = None) -> Iterator[Path]:
    """A directory of this process's own (mode 0700) for gunicorn's socket, removed after.

    In the temporary directory (``parent`` in tests): a unix socket's path is limited to
    107 bytes, which a data directory may already exceed. Directories left by an edge that
    was SIGKILLed (its pid no longer runs) are removed first.
    """
    parent = parent or Path(tempfile.gettempdir())
    sweep_private_dirs(parent)
    path = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_private_dirs(parent: Path) -> list[Path]:
    """Remove the socket directories under ``parent`` of edges that no longer run; them."""
    swept = []
    for path in parent.glob(f"{PRIVATE_PREFIX}*-*"):
        pid = path.name.removeprefix(PRIVATE_PREFIX).split("-", 1)[0]
        if pid.isdigit() and path.stat().st_uid == os.getuid() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept
