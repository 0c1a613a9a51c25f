"""``switchboard dlq`` (alias ``dead-letters``): the on-call tool for dead letters.

Find them (``list``, ``show``, ``export``: read-only, in ``infra.cli.bus``), fix a
payload (``edit``), send them back to their queue (``replay``) or drop them (``purge``),
and read who did what (``audit``).

Writes are checked before and recorded after:

- a payload is validated against the contract its message names (the ``contract``
  option) before an edit is kept or a replay enqueued; an invalid one changes nothing;
- ``edit``, ``replay`` and ``purge`` need ``--reason`` and write one audit entry per
  dead letter tried, with what came of it (``kept``, ``replayed``, ``gone`` …) and who
  (``--as NAME``, else the OS user);
- a replay re-enqueues the message with its id and options (job id and idempotency key,
  so the step's effects stay single) and takes its job out of ``failed``.

Replaying or purging twice is harmless: the broker's scripts are atomic, so the second
finds the dead letter gone, and says so. Exit codes: 2 for a usage error (an unknown
queue, a bad ``--since`` …), 1 when a dead letter is unknown, an edit is rejected or a
replay skipped an invalid payload.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from infra.bus.dead_letters import DeadLetter, DeadLetters, LetterKey
from infra.cli import bus
from infra.cli.bus import (
    ActorOption,
    BatchLimitOption,
    Choice,
    ErrorOption,
    JsonOption,
    QueueOption,
    SinceOption,
    TenantOption,
    dead_letters,
    letter_or_fail,
    selection,
    usage_error,
    utc,
)
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.operator import AsOption, ReasonOption
from infra.cli.operator import operator as operator_name
from infra.cli.operator import reason as reason_text
from infra.cli.output import err, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.dlq import (
    DeadLetterDesk,
    Outcome,
    contract_of,
    entry_document,
    options_of,
    payload_diff,
    pretty,
    violations,
)
from infra.documents import call_document
from infra.settings import Settings, load_settings
from infra.store.audit import ACTIONS as AUDIT_ACTIONS
from infra.store.audit import SqlAudit
from infra.store.dialing import SqlCallBook
from infra.store.job_views import SqlJobQueries
from infra.store.progress import SqlJobProgress

app = typer.Typer(
    cls=HelpGroup,
    help="Dead letters: list, show, edit, replay, purge, export; and the audit log.",
    no_args_is_help=True,
)
app.command("list", cls=HelpCommand)(bus.list_letters)
app.command(cls=HelpCommand)(bus.show)
app.command(cls=HelpCommand)(bus.export)

IdsArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="ID", help="Dead letter ids (`dlq list`).", show_default=False),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every dead letter the filters select.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only say what would be done.")]


# Writing ---------------------------------------------------------------------------


def _run_editor(editor: str, text: str, message_id: str) -> str:
    """Let the operator edit ``text`` in a temporary file; return what they saved.

    Raises:
        OSError: The editor could not be started.
        ValueError: The editor exited non-zero.
    """
    with tempfile.TemporaryDirectory(prefix="switchboard-dlq-") as directory:
        path = Path(directory) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', message_id)}.json"
        path.write_text(text, encoding="utf-8")
        # The operator's own editor, on a file of ours: running it is the point.
        done = subprocess.run([*shlex.split(editor), str(path)], check=False)  # noqa: S603
        if done.returncode != 0:
            raise ValueError(f"the editor exited with status {done.returncode}")
        return path.read_text(encoding="utf-8")


def _edited(
    desk: DeadLetterDesk, letter: DeadLetter, editor: str, *, operator: str, why: str
) -> tuple[Outcome, str]:
    """Run the editor on the payload and keep what it saved if the contract accepts it.

    Returns:
        What came of it, and what to do when the edit was refused.
    """
    message_id = letter.message_id
    again = f"run `switchboard dlq edit {message_id} --reason …` again to fix it"
    if contract_of(letter) is None:
        # The desk refuses it (and says why) before any editor opens.
        refused = desk.edit_letter(letter, letter.payload, actor=operator, reason=why)
        return refused, (
            "this release knows no contract of that name: edit it with one that does, "
            f"or drop it with `switchboard dlq purge {message_id} --reason …`"
        )
    before = pretty(letter.payload)
    try:
        text = _run_editor(editor, before, message_id)
    except OSError as error:
        refused = desk.refuse_edit(letter, f"cannot edit: {error}", actor=operator, reason=why)
        return refused, "pass --editor COMMAND, or set EDITOR, to an editor installed here"
    except ValueError as error:
        refused = desk.refuse_edit(letter, f"cannot edit: {error}", actor=operator, reason=why)
        return refused, f"an edit is kept only when the editor exits 0; {again}"
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"line {error.lineno} column {error.colno}: {error.msg}"
        refused = desk.refuse_edit(
            letter,
            f"invalid JSON: {problem}",
            actor=operator,
            reason=why,
            diff=payload_diff(before, text, message_id),
        )
        return refused, again
    result = desk.edit_letter(letter, payload, actor=operator, reason=why)
    if result.kind == "gone":
        return result, f"`switchboard dlq audit --target {message_id}` shows what became of it"
    return result, again


@app.command(cls=HelpCommand)
def edit(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="A dead letter id (`dlq list`).")],
    reason: ReasonOption,
    who: AsOption = None,
    editor: Annotated[
        str,
        typer.Option(
            envvar=["EDITOR", "VISUAL"],
            metavar="COMMAND",
            help="The editor to run.",
        ),
    ] = "vi",
) -> None:
    """Edit a dead letter's payload; keep it only if its contract accepts it.

    The payload opens as JSON in the editor. Invalid JSON or a payload the contract
    refuses changes nothing; either way the attempt and its diff go to the audit log.
    """
    operator, why = operator_name(who), reason_text(reason)
    settings = load_settings()
    with migrated_engine(settings) as engine, dead_letters(settings) as letters:
        letter = letter_or_fail(letters, message_id)
        desk = DeadLetterDesk(letters, SqlJobProgress(engine), SqlAudit(engine))
        result, hint = _edited(desk, letter, editor, operator=operator, why=why)
    console = out()
    if result.kind == "kept":
        console.print(result.diff or "", markup=False, end="")
        console.print(result.message, markup=False)
        console.print(f"replay it with `switchboard dlq replay {letter.message_id} --reason …`")
        return
    if result.kind == "unchanged":
        console.print(result.message, markup=False)
        return
    for problem in result.violations:
        err().print(f"  {problem}", markup=False)
    fail(result.message, hint=hint)


Targets = list[tuple[str, LetterKey | None]]
"""The dead letters a replay or purge acts on: (id, where it is, or None when unknown).

Where, not the letter itself: each is read again just before it is acted on, so a bulk
replay of many thousands holds their keys in memory, not their payloads.
"""


def _targets(
    letters: DeadLetters, ids: Sequence[str], chosen: Choice | None, limit: int | None
) -> Targets:
    if chosen is not None:
        return [(letter.message_id, letter.key) for letter in chosen.matching(letters, limit)]
    # By Dramatiq message id, whichever id was given (``get`` also takes the ``.XQ`` id).
    found: dict[str, LetterKey | None] = {}
    for given in ids:
        letter = letters.get(given)
        found.setdefault(letter.message_id if letter else given, letter.key if letter else None)
    return list(found.items())


def _batch_selection(
    settings: Settings,
    ids: list[str] | None,
    every: bool,
    filters: dict[str, str | None],
    limit: int | None,
) -> Choice | None:
    """The selection of ``--all``, or None for ids (exits 2 on a mix or on neither)."""
    if bool(ids) == every:
        usage_error(
            "give dead letter ids or --all, not both" if every else "give ids or --all",
            hint="e.g. `ID ID …` or `--all --queue QUEUE` (see `switchboard dlq list`)",
        )
    if not every:
        used = [f"--{name}" for name, value in filters.items() if value is not None]
        if limit is not None:
            used.append("--limit")
        if used:
            usage_error(
                f"{', '.join(used)} select with --all only",
                hint="drop them to act on the ids given, or give --all instead of the ids",
            )
        return None
    return selection(settings, **filters)


Act = Callable[[str, DeadLetter | None], Outcome]
"""Replays or purges one target (auditing it) and says what came of it."""


def _apply(letters: DeadLetters, targets: Targets, act: Act, label: str) -> Counter[str]:
    """``act`` on every target, read again first, with a progress bar when there are several."""
    counts: Counter[str] = Counter()
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out(), disable=len(targets) < 2) as progress:
        task = progress.add_task(label, total=len(targets))
        for message_id, key in targets:
            done = act(message_id, None if key is None else letters.load(key))
            progress.console.print(done.message, markup=False)
            counts[done.kind] += 1
            progress.advance(task)
    return counts


_DONE = {"replay": "replayed", "purge": "purged"}
_DOING = {"replay": "replaying", "purge": "purging"}


def _preview(letters: DeadLetters, targets: Targets, verb: str, *, check: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    console = out()
    for message_id, key in targets:
        letter = None if key is None else letters.load(key)
        problems = violations(letter, letter.payload) if check and letter else []
        if letter is None:
            kind, line = "gone", f"gone: {message_id} is not a dead letter"
        elif problems:
            kind, line = "invalid", f"would skip {message_id}: invalid ({'; '.join(problems)})"
        else:
            job = options_of(letter).get("job_id", "-")
            kind, line = _DONE[verb], f"would {verb} {message_id} ({letter.queue}, job {job})"
        console.print(line, markup=False)
        counts[kind] += 1
    return counts


def _batch(
    verb: str,
    *,
    reason: str,
    who: str | None,
    ids: list[str] | None,
    every: bool,
    filters: dict[str, str | None],
    limit: int | None,
    dry_run: bool,
) -> Counter[str]:
    """Replay or purge (``verb``) the dead letters given, auditing each; count outcomes."""
    operator, why = operator_name(who), reason_text(reason)
    settings = load_settings()
    chosen = _batch_selection(settings, ids, every, filters, limit)
    with migrated_engine(settings) as engine, dead_letters(settings) as letters:
        targets, unknown = _known_targets(
            _targets(letters, ids or [], chosen, limit), SqlAudit(engine)
        )
        for message_id in unknown:
            err().print(
                f"unknown: {message_id} is not a dead letter, and none by that id was "
                "replayed, purged or edited here (check it with `switchboard dlq list`)",
                markup=False,
            )
        if not targets:
            if not unknown:
                out().print(chosen.nothing() if chosen else "no dead letters", markup=False)
            return Counter(unknown=len(unknown))
        if dry_run:
            counts = _preview(letters, targets, verb, check=verb == "replay")
        else:
            desk = DeadLetterDesk(letters, SqlJobProgress(engine), SqlAudit(engine))
            act_on = desk.replay_letter if verb == "replay" else desk.purge_letter

            def act(message_id: str, letter: DeadLetter | None) -> Outcome:
                return act_on(message_id, letter, actor=operator, reason=why)

            counts = _apply(letters, targets, act, _DOING[verb])
    _summary(counts, verb, dry_run=dry_run)
    counts["unknown"] = len(unknown)
    return counts


def _known_targets(targets: Targets, audit: SqlAudit) -> tuple[Targets, list[str]]:
    """The targets to act on, and the ids given that never were dead letters here.

    An id that is no dead letter now but has an audit entry was replayed or purged
    before: acting on it again is harmless and reported ``gone``. One without any is a
    typo or another system's id: it is named, not audited, and the command exits 1.
    """
    unknown = [
        message_id
        for message_id, key in targets
        if key is None and not audit.entries(target=message_id, limit=1)
    ]
    return [target for target in targets if target[0] not in unknown], unknown


@app.command(cls=HelpCommand)
def replay(
    reason: ReasonOption,
    ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueOption = None,
    actor: ActorOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    tenant: TenantOption = None,
    limit: BatchLimitOption = None,
    dry_run: DryRunOption = False,
    who: AsOption = None,
) -> None:
    """Send dead letters back to their queue, same message id and options, job requeued.

    A payload its contract refuses is skipped (fix it with `dlq edit` first); one
    replayed or purged meanwhile is counted gone. Exits 1 when any was skipped or an
    id given never was a dead letter here.
    """
    filters = {"queue": queue, "actor": actor, "error": error, "since": since, "tenant": tenant}
    counts = _batch(
        "replay",
        reason=reason,
        who=who,
        ids=ids,
        every=every,
        filters=filters,
        limit=limit,
        dry_run=dry_run,
    )
    if counts["invalid"] or counts["unknown"]:
        raise typer.Exit(1)


@app.command(cls=HelpCommand)
def purge(
    reason: ReasonOption,
    ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueOption = None,
    actor: ActorOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    tenant: TenantOption = None,
    limit: BatchLimitOption = None,
    dry_run: DryRunOption = False,
    who: AsOption = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="With --all and no filter: purge every queue's without asking."),
    ] = False,
) -> None:
    """Delete dead letters for good (their jobs stay failed).

    `--all` without a filter purges every dead letter of every queue: it asks first
    (or, without a terminal to ask on, wants --yes). Exits 1 when an id given never
    was a dead letter here.
    """
    filters = {"queue": queue, "actor": actor, "error": error, "since": since, "tenant": tenant}
    nothing_narrows = all(value is None for value in filters.values()) and limit is None
    if every and not ids and not dry_run and not yes and nothing_narrows:
        _confirm_purging_everything()
    counts = _batch(
        "purge",
        reason=reason,
        who=who,
        ids=ids,
        every=every,
        filters=filters,
        limit=limit,
        dry_run=dry_run,
    )
    if counts["unknown"]:
        raise typer.Exit(1)


def interactive() -> bool:
    """Whether someone at a terminal can answer a question."""
    return sys.stdin.isatty()


def _confirm_purging_everything() -> None:
    """Ask before every dead letter goes (exits 2 when nobody can be asked, 1 on no)."""
    if not interactive():
        bus.usage_error(
            "--all without a filter purges every dead letter of every queue",
            hint="add --yes if that is what you mean, or narrow it with --queue, --actor …",
        )
    if not typer.confirm("Purge every dead letter of every queue, for good?", default=False):
        fail("nothing purged")


def _summary(counts: Counter[str], verb: str, *, dry_run: bool) -> None:
    done = _DONE[verb]
    parts = [f"would {verb} {counts[done]}" if dry_run else f"{done} {counts[done]}"]
    if verb == "replay":
        parts.append(f"{'would skip' if dry_run else 'skipped'} {counts['invalid']} as invalid")
    parts.append(f"{counts['gone']} gone" + ("" if dry_run else " meanwhile"))
    text = ", ".join(parts) + "."
    console = out()
    console.print(f"Dry run: {text} Nothing changed." if dry_run else text[:1].upper() + text[1:])
    if counts["invalid"]:
        console.print("Fix an invalid payload with `switchboard dlq edit ID --reason …`.")


# The audit log -----------------------------------------------------------------------


@app.command(cls=HelpCommand)
def audit(
    target: Annotated[
        str | None, typer.Option(metavar="ID", help="Only entries about this id.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(metavar="ACTION", help=f"Only this action: {', '.join(AUDIT_ACTIONS)}."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, metavar="N", help="At most this many.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first: who replayed, edited, purged or forgot what, why, and how."""
    if action is not None and action not in AUDIT_ACTIONS:
        bus.usage_error(
            f"unknown action {action!r}", hint=f"known actions: {', '.join(AUDIT_ACTIONS)}"
        )
    settings = load_settings()
    with migrated_engine(settings) as engine:
        entries = SqlAudit(engine).entries(target=target, action=action, limit=limit)
    if as_json:
        typer.echo(json.dumps([entry_document(entry) for entry in entries], indent=2))
        return
    console = out()
    if not entries:
        console.print("no audit entries" + (" match" if target or action else " yet"))
        return
    table = Table(title="Audit log, newest first")
    for column in ("When (UTC)", "Who", "Action", "Target", "Queue", "Job", "Reason", "Outcome"):
        wraps = column in ("Reason", "Outcome")
        table.add_column(column, no_wrap=not wraps, max_width=48 if wraps else None)
    for entry in entries:
        cells = (
            utc(entry.at),
            entry.actor,
            entry.action,
            entry.target,
            entry.queue or "-",
            entry.job_id or "-",
            entry.reason,
            entry.outcome,
        )
        table.add_row(*(Text(cell) for cell in cells))
    print_whole(console, table)


@app.command(cls=HelpCommand)
def review(
    limit: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="At most this many of each.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """What needs a person beside dead letters: jobs failed at intake, calls of unknown outcome.

    A job failed at intake was accepted, but its first message no longer validates
    against its contract, so it was never published. A call's outcome is unknown when
    the telephony provider was asked to place it and no answer came back: it is not
    placed again by itself; look it up with the provider (a late status webhook settles it).
    """
    with migrated_engine(load_settings()) as engine:
        jobs = SqlJobQueries(engine).failed_at_intake(limit=limit)
        calls = SqlCallBook(engine).needing_review(limit=limit)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "failed_at_intake": [
                        {
                            "job_id": j.job_id,
                            "kind": j.kind,
                            "tenant": j.tenant_name,
                            "created_at": j.created_at.isoformat(),
                            "error": j.failure.error if j.failure else None,
                        }
                        for j in jobs
                    ],
                    "unknown_calls": [call_document(c) | {"phone": c.phone} for c in calls],
                },
                indent=2,
            )
        )
        return
    console = out()
    if not jobs and not calls:
        console.print("nothing needs review: no job failed at intake, no call of unknown outcome")
        return
    if jobs:
        table = Table(title="Jobs failed at intake (never published)")
        for column in ("Job", "Kind", "Tenant", "Accepted (UTC)", "Why"):
            table.add_column(column, no_wrap=column != "Why")
        for job in jobs:
            why = job.failure.error if job.failure else "-"
            table.add_row(job.job_id, job.kind, job.tenant_name or "-", utc(job.created_at), why)
        print_whole(console, table)
    if calls:
        table = Table(title="Calls of unknown outcome (not placed again by themselves)")
        for column in ("Call", "Tenant", "Phone", "Attempt", "Placed or due (UTC)", "Error"):
            table.add_column(column, no_wrap=column != "Error")
        for call in calls:
            moment = call.placed_at or call.due_at
            table.add_row(
                call.id,
                call.tenant_id,
                call.phone,
                str(call.attempt),
                utc(moment) if moment else "-",
                call.error or "-",
            )
        print_whole(console, table)
