"""The help of every command reads well: walked over the whole command tree."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from rich.text import Text
from typer.core import TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from infra.cli.main import app


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


TREE = dict(_walk(get_command(app)))
"""Every command and group by its path (``()`` is ``switchboard`` itself)."""


def _name(path: tuple[str, ...]) -> str:
    return " ".join(("switchboard", *path))


def _texts(command: Any) -> Iterator[str]:
    """The help texts the command declares: its own and its parameters'."""
    yield command.help or ""
    for param in command.params:
        yield getattr(param, "help", None) or ""
        shown = getattr(param, "show_default", None)
        if isinstance(shown, str):
            yield shown


def test_the_walk_reaches_the_nested_commands() -> None:
    assert ("dlq", "replay") in TREE
    assert ("users", "add") in TREE
    assert len(TREE) > 30


@pytest.mark.parametrize("path", list(TREE), ids=_name)
def test_help_exits_0_without_leaks_or_noise(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Usage:" in text
    assert "``" not in text, "reStructuredText backticks"
    assert "Args:" not in text, "a docstring's Args section"
    assert "<bool>" not in text, "a flag takes no value"
    assert not re.search(r" \.(\s|$)", text), "markup eaten before a full stop"


@pytest.mark.parametrize("path", list(TREE), ids=_name)
def test_no_help_text_holds_markup_that_rich_would_eat(path: tuple[str, ...]) -> None:
    for text in _texts(TREE[path]):
        assert Text.from_markup(text).plain == text, text


@pytest.mark.parametrize("path", list(TREE), ids=_name)
def test_every_option_that_takes_a_value_names_it(path: tuple[str, ...]) -> None:
    unnamed = [
        param.opts[0]
        for param in TREE[path].params
        if isinstance(param, TyperOption) and not param.is_flag and not param.metavar
    ]

    assert unnamed == [], "these show a type like <str> instead of what to give"


def test_settings_driven_defaults_say_where_they_come_from(runner: CliRunner) -> None:
    result = runner.invoke(app, ["api", "--help"], env={"COLUMNS": "200"})

    assert "SWITCHBOARD_API__HOST, else 127.0.0.1" in result.stdout
    assert "SWITCHBOARD_API__PORT, else 8000" in result.stdout


def test_version_prints_the_installed_version_and_exits_0(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout == f"switchboard {version('switchboard')}\n"


def test_version_is_listed_in_the_help(runner: CliRunner) -> None:
    assert "--version" in runner.invoke(app, ["--help"]).stdout
