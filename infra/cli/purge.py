"""``switchboard purge``: delete finished records older than their retention, in batches.

Without ``--older-than`` each kind is kept as configured (``SWITCHBOARD_RETENTION__*``,
what the scheduler applies every day); with it, every kind's finished records older
than DAYS go. Calls go whole, their vectors included (``infra.retention``); jobs still
queued or processing, users, tenants and the audit log never do. A run that deleted
something is recorded in the audit log under ``--as NAME`` (else the OS user).

Exit codes: 0 when the run finished (``--dry-run`` included), 1 when the database or
the vector index failed midway (what went stays gone; run it again to carry on).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from contracts.errors import TransientError
from infra.cli.index import vector_index
from infra.cli.operator import AsOption, operator
from infra.cli.output import err, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.retention import LABELS, PurgeReport, Retention, configured_rules, uniform_rules
from infra.settings import DAY_MS, load_settings
from infra.store.audit import SqlAudit
from infra.store.erasure import described
from infra.store.retention import Kind


class _Bars:
    """One progress bar per kind (``infra.retention.Progress``)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[Kind, TaskID] = {}

    def start(self, kind: Kind, total: int) -> None:
        """Add the kind's bar."""
        self._tasks[kind] = self._progress.add_task(LABELS[kind], total=total)

    def advance(self, kind: Kind, records: int) -> None:
        """Move the kind's bar on."""
        self._progress.advance(self._tasks[kind], records)


@contextmanager
def _bars(console: Console) -> Iterator[_Bars]:
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn())
    # Bars only on a terminal: a script or a log gets the summary alone.
    with Progress(
        *columns, TimeElapsedColumn(), console=console, disable=not console.is_terminal
    ) as progress:
        yield _Bars(progress)


def purge(
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than",
            min=1,
            metavar="DAYS",
            help="Delete every kind's finished records older than DAYS.",
            show_default="each kind's SWITCHBOARD_RETENTION__…_DAYS",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="Why, for the audit log.", show_default="the rule"),
    ] = None,
    who: AsOption = None,
) -> None:
    """Delete finished jobs, calls and records older than their retention, in batches.

    Never deletes queued or processing jobs, calls still being processed or with a
    callback to place, users, tenants or the audit log.
    """
    settings = load_settings()
    actor = operator(who)
    now = datetime.now(UTC)
    if older_than is None:
        rules = configured_rules(settings.retention, now)
        why = reason or "the configured retention"
    else:
        rules = uniform_rules(older_than, now)
        why = reason or f"older than {older_than} days"
        _warn_about_dead_letters(older_than, settings.broker.dead_message_ttl_ms)
    console = out()
    with migrated_engine(settings) as engine, vector_index(settings, engine) as index:
        retention = Retention(
            engine, index, SqlAudit(engine), batch_size=settings.retention.batch_size
        )
        try:
            with _bars(console) as bars:
                report = retention.run(
                    rules, actor=actor, reason=why, dry_run=dry_run, progress=bars
                )
        except TransientError as error:
            fail(
                f"purge stopped: {error}",
                hint="what was deleted stays deleted: run the same command again to carry on",
            )
    _print_report(console, report, dead_letter_days=settings.broker.dead_message_ttl_ms / DAY_MS)


def _warn_about_dead_letters(days: int, ttl_ms: int) -> None:
    ttl_days = ttl_ms / DAY_MS
    if days <= ttl_days:
        err().print(
            f"note: dead letters are kept {ttl_days:g} days; a failed job purged before its "
            "dead letters expire leaves a replay of them without a job record",
            markup=False,
        )


def _print_report(console: Console, report: PurgeReport, *, dead_letter_days: float) -> None:
    title = "Dry run: what would be deleted" if report.dry_run else "Deleted"
    table = Table(title=title)
    for column in ("Kind", "Kept", "Older than (UTC)", "Records", "Rows"):
        table.add_column(column, justify="right" if column == "Records" else "left")
    for result in report.results:
        rule = result.rule
        rows = described(result.tally)
        if result.more_left:
            rows += " (more left)"
        table.add_row(
            LABELS[rule.kind],
            _days(rule.days) if rule.days else "for ever",
            f"{rule.cutoff:%Y-%m-%d %H:%M}" if rule.cutoff else "-",
            str(result.records),
            rows or "-",
        )
    table.add_row("dead letters", _days(dead_letter_days), "-", "-", "expire in the broker")
    table.add_row("audit log", "for ever", "-", "-", "append-only: never purged")
    print_whole(console, table)
    total = report.total.total()
    if report.dry_run:
        vectors = " (vectors not counted)" if report.results[0].records else ""
        console.print(f"Dry run: would delete {total} rows{vectors}; nothing changed.")
    elif total:
        console.print(f"Deleted {total} rows; recorded in the audit log.")
    else:
        console.print("Nothing was older than its retention.")


def _days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")
