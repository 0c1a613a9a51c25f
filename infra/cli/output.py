"""Console output of the CLI: results on stdout, errors on stderr with what to do next."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text


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
