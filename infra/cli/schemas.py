"""``switchboard contracts``: export the JSON Schemas and check for breaking changes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import contracts
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.output import fail, out
from infra.schemas import check as check_schemas
from infra.schemas import export_schemas, version_problems

app = typer.Typer(
    cls=HelpGroup, help="Contract schemas: export and compatibility check.", no_args_is_help=True
)


def committed_schemas() -> Path:
    """The schema snapshot committed with the contracts package."""
    return Path(contracts.__file__).resolve().parent / "schemas"


@app.command("export", cls=HelpCommand)
def export(
    directory: Annotated[
        Path, typer.Argument(metavar="DIRECTORY", help="Where to write the JSON Schemas.")
    ],
) -> None:
    """Write every contract's JSON Schema into DIRECTORY.

    Over an earlier export, refuses when the change needs a new contracts version that
    contracts.__version__ does not have yet.
    """
    problems = version_problems(directory)
    if problems:
        fail(
            "; ".join(problems),
            hint="bump the version in contracts/__init__.py, then export again",
        )
    written = export_schemas(directory)
    console = out()
    for path in written:
        console.print(f"wrote {path}")
    console.print(f"{len(written)} schema files in {directory}.")


@app.command("check", cls=HelpCommand)
def check(
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIRECTORY",
            help="The snapshot to compare with.",
            show_default="the one committed with the contracts",
        ),
    ] = None,
) -> None:
    """Report breaking changes of the contracts against a schema snapshot (exit 1 if any)."""
    snapshot = directory or committed_schemas()
    if not snapshot.is_dir():
        fail(
            f"no schema snapshot at {snapshot}",
            hint=f"create one with `switchboard contracts export {snapshot}`",
        )
    try:
        problems = check_schemas(snapshot)
    except FileNotFoundError as error:
        fail(str(error), hint=f"create one with `switchboard contracts export {snapshot}`")
    if problems:
        console = out()
        console.print(f"{len(problems)} breaking change(s) against {snapshot}:")
        for problem in problems:
            console.print(f"  - {problem}", markup=False)
        raise typer.Exit(1)
    out().print(f"No breaking changes against {snapshot}.")
