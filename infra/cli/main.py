"""The ``switchboard`` command: the entry point of every local and production task.

Commands build the settings once (``load_settings()``: environment variables, including
``SWITCHBOARD_DATA_DIR``) and exit non-zero with a message saying what to do on a
user error, without a traceback. Every group and command renders its help with the
classes of ``infra.cli.help_format``.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from infra.cli import admins, bus, db, dlq, forget, processes, purge, schemas, tenants, users
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.output import out
from infra.demo.runner import run_demo
from infra.settings import load_settings

app = typer.Typer(
    name="switchboard",
    cls=HelpGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(tenants.app, name="tenants")
app.add_typer(users.app, name="users")
app.add_typer(admins.app, name="admins")
app.add_typer(schemas.app, name="contracts")
app.add_typer(dlq.app, name="dlq")
app.add_typer(dlq.app, name="dead-letters", help="The same as `dlq` (its former name).")
app.add_typer(forget.app, name="forget")
app.command(cls=HelpCommand)(bus.queues)
app.command(cls=HelpCommand)(purge.purge)
app.command(cls=HelpCommand)(processes.api)
app.command(cls=HelpCommand)(processes.worker)
app.command(cls=HelpCommand)(processes.scheduler)
app.command(cls=HelpCommand)(processes.dev)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"switchboard {version('switchboard')}")
        raise typer.Exit


@app.callback()
def switchboard(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Switchboard: background jobs for voice-AI products."""


@app.command(cls=HelpCommand)
def demo() -> None:
    """Run the demo: start the stack, post sample calls and show what came out.

    Its state, logs included, stays in the data directory's demo folder
    (SWITCHBOARD_DATA_DIR, default .switchboard) until the next run.
    """
    raise typer.Exit(run_demo(load_settings(), out()))


def main() -> None:
    """Console entry point (``switchboard = "infra.cli.main:main"``)."""
    app()
