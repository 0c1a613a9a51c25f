"""Console output of the CLI: results on stdout, errors on stderr with what to do next."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

USAGE_ERROR = 2
"""The exit code of a value the user must fix (click's code for usage errors)."""

_UNBOUNDED = 10_000
"""A width no table reaches, to measure a table's natural width."""


def out() -> Console:
    """A console on stdout (created per command so test runners can capture it)."""
    return Console(soft_wrap=True, highlight=False)


def err() -> Console:
    """A console on stderr."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


def fail(message: str, *, hint: str | None = None, code: int = 1) -> NoReturn:
    """Print a user error (and what to do about it) and exit non-zero, no traceback."""
    console = err()
    # Text, not markup: messages quote user input and exceptions, which may hold "[".
    console.print(Text.assemble(("error: ", "bold red"), message))
    if hint:
        console.print(Text.assemble(("hint: ", "dim"), hint))
    raise typer.Exit(code)


def print_whole(console: Console, table: Table) -> None:
    """Print ``table`` uncut: wider than the terminal, as ids are pasted into commands."""
    unbounded = console.options.update_width(_UNBOUNDED)
    console.width = max(console.width, Measurement.get(console, unbounded, table).maximum)
    console.print(table)
