"""The help of every command reads well: walked over the whole command tree."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from typer.core import TyperOption
from typer.main import get_command
from typer.testing import CliRunner, Result

from infra.cli.main import app
from infra.cli.suggestions import MAX_SUGGESTIONS, ZONE_EXAMPLE, close_zones


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


# Hints fit their error ----------------------------------------------------------------


def _hint(result: Result) -> str:
    [hint] = [line for line in result.stderr.splitlines() if line.startswith("hint: ")]
    return hint.removeprefix("hint: ")


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Europe/Londn", "Europe/London"),
        ("europe/london", "Europe/London"),
        ("kolkata", "Asia/Kolkata"),
        ("new york", "America/New_York"),
    ],
)
def test_a_mistyped_tz_in_users_add_suggests_the_closest_zone(
    runner: CliRunner, data_dir: Path, typed: str, zone: str
) -> None:
    user = ["--name", "Ada", "--phone", "+447700900123", "--time", "09:30"]

    result = runner.invoke(app, ["users", "add", "--tenant", "acme", *user, "--tz", typed])

    assert result.exit_code == 2
    assert f"invalid --tz: unknown time zone {typed!r} (use an IANA name" in result.stderr
    assert _hint(result) == f"did you mean {zone}?"


def test_a_mistyped_timezone_in_tenants_add_suggests_zones_not_the_tenant_list(
    runner: CliRunner, data_dir: Path
) -> None:
    result = runner.invoke(
        app, ["tenants", "add", "acme", "--agent", "a1", "--timezone", "Amerca/Chicago"]
    )

    assert result.exit_code == 2
    assert "invalid --timezone: unknown time zone 'Amerca/Chicago'" in result.stderr
    assert _hint(result) == "did you mean America/Chicago?"


def test_a_zone_like_no_known_one_gets_an_example_instead(
    runner: CliRunner, data_dir: Path
) -> None:
    result = runner.invoke(
        app, ["tenants", "add", "acme", "--agent", "a1", "--timezone", "Mars/Olympus_Mons"]
    )

    assert result.exit_code == 2
    assert _hint(result) == ZONE_EXAMPLE


def test_close_zones_are_the_best_few_and_nothing_far() -> None:
    assert close_zones("Berlin") == ["Europe/Berlin"]
    assert close_zones("utc") == ["Etc/UTC", "UTC"]
    assert close_zones("PST") == []
    assert len(close_zones("Pacific")) <= MAX_SUGGESTIONS
