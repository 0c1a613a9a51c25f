"""Reading the bus, for on-call engineers: ``queues`` and finding dead letters.

``queues`` counts each pipeline queue's messages by state. ``list``, ``show`` and
``export`` (commands of ``switchboard dlq``, registered by ``infra.cli.dlq``) find dead
letters by queue, actor, exception type, time and tenant; ``show`` adds the state of the
job from the store. Everything here is read-only: the writes, checked and audited, are
in ``infra.cli.dlq``, which reads through the helpers here.

Dramatiq keeps each dead letter's payload, ``FailureRecorder`` its exception, traceback
and attempt count; ``DeadLetters`` joins the two.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import redis
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from contracts.errors import TransientError
from infra.bus.broker import redis_client
from infra.bus.dead_letters import PAGE, DeadLetter, DeadLetters
from infra.bus.queues import queue_depths
from infra.cli.output import USAGE_ERROR, err, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.dlq import (
    ACTORS,
    QUEUES,
    Selection,
    letter_document,
    options_of,
    since_moment,
)
from infra.durations import human_duration
from infra.embedded import running_server
from infra.settings import Settings, load_settings
from infra.store.job_views import SqlJobQueries
from infra.store.records import JobView
from infra.store.tenants import SqlTenantDirectory

PROGRESS_FROM = 2 * PAGE
"""Reading more dead letters than this shows a progress bar."""

ERROR_WIDTH = 60
"""The error column of ``list`` shortens ``Type: message`` to this many characters."""


QueueOption = Annotated[
    str | None, typer.Option(metavar="QUEUE", help="Only this queue's dead letters.")
]
ActorOption = Annotated[
    str | None, typer.Option(metavar="ACTOR", help="Only dead letters for this actor.")
]
ErrorOption = Annotated[
    str | None,
    typer.Option(metavar="TYPE", help="Only failures with this exception type (PermanentError)."),
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="Only those dead since an ISO time (UTC if naive) or 30m, 2h, 1d ago.",
    ),
]
TenantOption = Annotated[
    str | None, typer.Option(metavar="TENANT", help="Only this tenant's (its id or name).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead.")]
BatchLimitOption = Annotated[
    int | None,
    typer.Option(min=1, metavar="N", help="At most this many, newest first.", show_default="all"),
]


@contextmanager
def broker_client(settings: Settings) -> Iterator[redis.Redis]:
    """A client of the configured broker, or of the running embedded Valkey.

    Exits with a message (and no traceback) when there is no broker, or when it
    cannot be reached inside the block.
    """
    url = settings.broker.url
    if not url:
        record = running_server(settings.data_dir)
        if record is None:
            fail(
                f"no broker: SWITCHBOARD_BROKER__URL is unset and no embedded Valkey runs "
                f"in {settings.data_dir}",
                hint="set SWITCHBOARD_BROKER__URL=redis://… (or start `switchboard dev`)",
            )
        url = record.url
    client = redis_client(settings.broker, url)
    try:
        yield client
    except TransientError as error:
        fail(f"cannot reach the broker: {error}", hint="is the broker running?")
    finally:
        client.close()


@contextmanager
def dead_letters(settings: Settings) -> Iterator[DeadLetters]:
    """The dead letters of the configured broker's namespace (see ``broker_client``)."""
    with broker_client(settings) as client:
        yield DeadLetters(client, settings.broker.namespace)


def queues() -> None:
    """Messages per pipeline queue: ready, delayed (retry backoff), in flight, dead.

    "Oldest ready" is how long the first message in line has waited to be fetched.
    """
    settings = load_settings()
    with broker_client(settings) as client:
        depths = queue_depths(client, settings.broker.namespace, QUEUES)
    now_ms = int(time.time() * 1000)
    table = Table(title=f"Queues ({settings.broker.namespace})")
    table.add_column("Queue")
    for column in ("Ready", "Delayed", "In flight", "Dead", "Oldest ready"):
        table.add_column(column, justify="right")
    for name, depth in depths.items():
        dead = Text(str(depth.dead), style="bold red" if depth.dead else "")
        oldest = human_duration(depth.oldest_age_s(now_ms))
        table.add_row(
            name, str(depth.ready), str(depth.delayed), str(depth.in_flight), dead, oldest
        )
    out().print(table)


def usage_error(message: str, *, hint: str | None = None) -> NoReturn:
    """Exit 2 (click's code for usage errors) with a value the user must fix."""
    fail(message, hint=hint, code=USAGE_ERROR)


# Selecting dead letters ------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """Which dead letters a command acts on (the filters of ``list``), as it was asked."""

    selection: Selection
    described: tuple[str, ...] = ()

    def matching(self, letters: DeadLetters, limit: int | None = None) -> Iterator[DeadLetter]:
        """The newest ``limit`` dead letters that match (all when None), as they are read.

        Every dead letter is read, a page at a time, until ``limit`` matched; when there
        are more than ``PROGRESS_FROM`` to read, a progress bar on stderr counts them.
        """
        total = letters.count(self.selection.queue)
        columns = (
            TextColumn("reading dead letters"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(
            *columns, console=err(), transient=True, disable=total < PROGRESS_FROM
        ) as progress:
            task = progress.add_task("reading", total=total)
            found = 0
            for letter in letters.newest(self.selection.queue, page=self.selection.page(limit)):
                progress.advance(task)
                if self.selection.matches(letter):
                    yield letter
                    found += 1
                    if found == limit:
                        return

    def select(self, letters: DeadLetters, limit: int | None) -> list[DeadLetter]:
        """The newest ``limit`` dead letters that match (all when None)."""
        return list(self.matching(letters, limit))

    def nothing(self) -> str:
        """The one line saying that no dead letter matches."""
        return "no dead letters" + (f" ({', '.join(self.described)})" if self.described else "")


def selection(
    settings: Settings,
    *,
    queue: str | None,
    actor: str | None,
    error: str | None,
    since: str | None,
    tenant: str | None,
) -> Choice:
    """Check the filter options and build the selection (exits 2 on a bad value)."""
    if queue is not None and queue not in QUEUES:
        usage_error(f"unknown queue {queue!r}", hint=f"known queues: {', '.join(QUEUES)}")
    if actor is not None and actor not in ACTORS:
        usage_error(f"unknown actor {actor!r}", hint=f"known actors: {', '.join(ACTORS)}")
    given = {"queue": queue, "actor": actor, "error": error, "since": since, "tenant": tenant}
    chosen = Selection(
        queue=queue,
        actor=actor,
        error=error,
        since=None if since is None else parse_since(since, datetime.now(UTC)),
        tenant_ids=None if tenant is None else _tenant_ids(settings, tenant),
    )
    described = tuple(f"{name} {value}" for name, value in given.items() if value is not None)
    return Choice(chosen, described)


def parse_since(value: str, now: datetime) -> datetime:
    """``--since``: an ISO time (UTC when it has no offset) or a duration ago (30m, 2h, 1d)."""
    try:
        return since_moment(value, now)
    except ValueError:
        usage_error(
            f"invalid --since {value!r}",
            hint="an ISO time (2026-03-02T09:30, UTC unless it has an offset) or 30m, 2h, 1d",
        )


def _tenant_ids(settings: Settings, tenant: str) -> frozenset[str]:
    """The tenant id ``tenant`` is, and the id of the tenant named ``tenant`` if any.

    When it is neither a tenant's name nor a tenant's id it still selects by tenant id
    (a message published by another service may name a tenant this store lacks), with
    a note on stderr: a typo must not read as "no dead letters" alone.
    """
    with migrated_engine(settings) as engine:
        directory = SqlTenantDirectory(engine)
        named = directory.tenant_by_name(tenant)
        known_ids = {found.id for found, _agents in directory.list_tenants()}
    if named is None and tenant not in known_ids:
        err().print(
            f"note: no tenant has the name or id {tenant!r}: selecting messages that carry "
            "it as their tenant id (`switchboard tenants list` shows the tenants)",
            markup=False,
        )
    return frozenset({tenant} if named is None else {tenant, named.id})


def _error(letter: DeadLetter) -> str:
    failure = letter.failure
    if failure is None:
        return "(no failure record)"
    return f"{failure.exception_type}: {failure.exception_message}"


def utc(moment: datetime) -> str:
    """``moment`` in UTC to the second, for tables."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def _letters_table(found: Sequence[DeadLetter]) -> Table:
    table = Table(title="Dead letters, newest first")
    for column in ("ID", "Queue", "Actor", "Contract", "Error"):
        table.add_column(column, no_wrap=True)
    table.add_column("Attempts", justify="right", no_wrap=True)
    table.add_column("Dead-lettered at (UTC)", no_wrap=True)
    table.add_column("Job", no_wrap=True)
    for letter in found:
        options = options_of(letter)
        error = textwrap.shorten(_error(letter), width=ERROR_WIDTH, placeholder=" …")
        cells = (
            letter.message_id,
            letter.queue,
            letter.actor,
            str(options.get("contract", "-")),
            error,
            str(letter.failure.attempts) if letter.failure else "?",
            utc(letter.dead_at),
            str(options.get("job_id", "-")),
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def list_letters(
    queue: QueueOption = None,
    actor: ActorOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    tenant: TenantOption = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest dead letters: which message, where, why, and its job."""
    settings = load_settings()
    chosen = selection(settings, queue=queue, actor=actor, error=error, since=since, tenant=tenant)
    with dead_letters(settings) as letters:
        found = chosen.select(letters, limit)
    if as_json:
        typer.echo(json.dumps([letter_document(letter, full=False) for letter in found], indent=2))
        return
    console = out()
    if not found:
        console.print(chosen.nothing(), markup=False)
        return
    print_whole(console, _letters_table(found))
    if len(found) == limit:
        console.print(f"(the newest {limit}; pass --limit for more)")


def letter_or_fail(letters: DeadLetters, message_id: str) -> DeadLetter:
    """The dead letter with this id; exits 1 with where to find ids when there is none."""
    letter = letters.get(message_id)
    if letter is None:
        fail(
            f"no dead letter with id {message_id}",
            hint="`switchboard dlq list` shows the ids",
        )
    return letter


def _job_line(job_id: object, view: JobView | None) -> str:
    if not job_id:
        return "-"
    if view is None:
        return f"{job_id} (not in the store)"
    line = f"{job_id}: {view.status} ({view.kind}, tenant {view.tenant_name or view.tenant_id})"
    if view.failure is not None:
        line += f", failed at {view.failure.step}: {view.failure.error}"
    return line


def show(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="A dead letter id (`dlq list`).")],
) -> None:
    """One dead letter in full: payload, options, exception, traceback and its job."""
    settings = load_settings()
    with dead_letters(settings) as letters:
        letter = letter_or_fail(letters, message_id)
    options = options_of(letter)
    job_id = options.get("job_id")
    view = None
    if job_id:
        with migrated_engine(settings) as engine:
            view = SqlJobQueries(engine).job_view(str(job_id), tenant_id=None)
    console = out()
    failure = letter.failure
    lines = [
        f"Dead letter {letter.message_id}",
        f"  Queue:      {letter.queue}",
        f"  Actor:      {letter.actor}",
        f"  Contract:   {options.get('contract', '-')}",
        f"  Dead at:    {utc(letter.dead_at)} UTC",
        f"  Attempts:   {failure.attempts if failure else '?'}",
        f"  Job:        {_job_line(job_id, view)}",
        f"  Tenant:     {options.get('tenant_id', '-')}",
        f"  Exception:  {_error(letter)}",
    ]
    for line in lines:
        console.print(line, markup=False)
    console.print("Payload:")
    console.print_json(data=letter.payload, default=str)
    console.print("Options:")
    console.print_json(data=options, default=str)
    if failure is not None:
        console.print("Traceback:")
        console.print(failure.traceback.rstrip(), markup=False)


def export(
    queue: QueueOption = None,
    actor: ActorOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    tenant: TenantOption = None,
    limit: BatchLimitOption = None,
) -> None:
    """Dead letters as JSON lines on stdout, newest first: everything `show` knows."""
    settings = load_settings()
    chosen = selection(settings, queue=queue, actor=actor, error=error, since=since, tenant=tenant)
    with dead_letters(settings) as letters:
        exported = 0
        for letter in chosen.matching(letters, limit):
            typer.echo(json.dumps(letter_document(letter, full=True), default=str))
            exported += 1
    if not exported:
        err().print(chosen.nothing(), markup=False)
