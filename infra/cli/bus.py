"""``switchboard queues`` and ``dead-letters list | show``: the bus, for on-call engineers.

Read-only. ``queues`` counts each pipeline queue's messages by state. Dramatiq keeps
each dead letter's payload and ``FailureRecorder`` keeps its exception, traceback and
attempt count; the ``dead-letters`` commands join the two. Editing and replaying dead
letters come with the DLQ tool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import redis
import typer
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from contracts import CONTRACTS
from contracts.errors import TransientError
from infra.bus.broker import redis_client
from infra.bus.dead_letters import DeadLetter, DeadLetters
from infra.bus.queues import queue_depths
from infra.cli.output import fail, out
from infra.embedded import running_server
from infra.settings import Settings, load_settings

app = typer.Typer(help="Inspect dead-lettered messages (read-only).", no_args_is_help=True)


@contextmanager
def _broker(settings: Settings) -> Iterator[redis.Redis]:
    """A client of the configured broker, or of the running embedded Valkey."""
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
        fail(f"cannot read the broker: {error}", hint="is the broker running?")
    finally:
        client.close()


@contextmanager
def _dead_letters(settings: Settings) -> Iterator[DeadLetters]:
    with _broker(settings) as client:
        yield DeadLetters(client, settings.broker.namespace)


def queues() -> None:
    """Messages per pipeline queue: ready, delayed (retry backoff), in flight, dead."""
    settings = load_settings()
    names = sorted({contract.route.queue for contract in CONTRACTS})
    with _broker(settings) as client:
        depths = queue_depths(client, settings.broker.namespace, names)
    table = Table(title=f"Queues ({settings.broker.namespace})")
    table.add_column("Queue")
    for column in ("Ready", "Delayed", "In flight", "Dead"):
        table.add_column(column, justify="right")
    for name, depth in depths.items():
        dead = Text(str(depth.dead), style="bold red" if depth.dead else "")
        table.add_row(name, str(depth.ready), str(depth.delayed), str(depth.in_flight), dead)
    out().print(table)


def _reason(letter: DeadLetter) -> str:
    failure = letter.failure
    if failure is None:
        return "(no failure record)"
    return f"{failure.exception_type}: {failure.exception_message}"


@app.command("list")
def list_(
    queue: Annotated[str | None, typer.Option(help="Only this queue's dead letters.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
) -> None:
    """The newest dead letters: when, where, which call, and why."""
    with _dead_letters(load_settings()) as letters:
        found = letters.list(queue, limit)
    console = out()
    if not found:
        console.print("no dead letters" + (f" on {queue}" if queue else ""))
        return
    console.print(f"{len(found)} dead letter(s), newest first (at most {limit}):")
    for letter in found:
        options = letter.message.get("options", {})
        attempts = letter.failure.attempts if letter.failure else "?"
        console.print()
        console.print(
            Text.assemble(
                (letter.message_id, "bold"),
                f"  {letter.queue}  ",
                (f"{letter.dead_at:%Y-%m-%d %H:%M:%S} UTC", "dim"),
            )
        )
        console.print(
            Text.assemble(
                ("  call ", "dim"),
                str(options.get("correlation_id", "-")),
                ("  job ", "dim"),
                str(options.get("job_id", "-")),
                ("  tries ", "dim"),
                str(attempts),
            )
        )
        console.print(Text("  " + _reason(letter), style="red"))


@app.command()
def show(message_id: Annotated[str, typer.Argument(help="A message id from `list`.")]) -> None:
    """One dead letter in full: its message, options, exception and traceback."""
    with _dead_letters(load_settings()) as letters:
        letter = letters.get(message_id)
    if letter is None:
        fail(
            f"no dead letter with id {message_id}",
            hint="`switchboard dead-letters list` shows the ids",
        )
    console = out()
    console.print(Text.assemble(("queue ", "dim"), letter.queue, ("  actor ", "dim"), letter.actor))
    console.print(Text.assemble(("dead at ", "dim"), f"{letter.dead_at:%Y-%m-%d %H:%M:%S} UTC"))
    console.print(Text.assemble(("reason ", "dim"), _reason(letter)))
    if letter.failure is not None:
        console.print(Text.assemble(("attempts ", "dim"), str(letter.failure.attempts)))
    console.print(Syntax(json.dumps(letter.message, indent=2, default=str), "json"))
    if letter.failure is not None:
        console.print(Text(letter.failure.traceback))
