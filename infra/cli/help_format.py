"""How the CLI's help reads: the typer command classes every command and group uses.

Typer's Rich help gives each option a type column, ``<bool>`` even for a flag (and
``--help``), which takes no value. ``HelpCommand`` and ``HelpGroup`` leave a flag's
column empty; options that take a value name it with a metavar (``--tz ZONE``).

Help texts are Rich markup: a pair of square brackets reads as a tag and disappears,
so help texts write defaults with ``show_default`` and never use brackets
(``tests/cli/test_cli_help.py`` checks both over the whole command tree).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup, TyperOption


def _without_flag_types(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # Rich help shows a set metavar in place of the type
    return params


class HelpCommand(TyperCommand):
    """A command whose help shows no type beside a flag (``--json``, not ``--json <bool>``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's parameters, ``--help`` included, flags without a type."""
        return _without_flag_types(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """A group whose help shows no type beside a flag (``--help``, ``--version``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, ``--help`` included, flags without a type."""
        return _without_flag_types(super().get_params(ctx))
