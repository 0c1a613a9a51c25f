from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from infra.cli.main import app


def test_check_against_a_fresh_export_finds_no_breaking_change(
    runner: CliRunner, tmp_path: Path
) -> None:
    exported = runner.invoke(app, ["contracts", "export", str(tmp_path / "schemas")])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "schemas" / "PostCallJobData.json").exists()

    result = runner.invoke(app, ["contracts", "check", str(tmp_path / "schemas")])
    assert result.exit_code == 0, result.output
    assert "No breaking changes" in result.stdout


def test_check_exits_1_listing_a_field_the_code_no_longer_has(
    runner: CliRunner, tmp_path: Path
) -> None:
    directory = tmp_path / "schemas"
    assert runner.invoke(app, ["contracts", "export", str(directory)]).exit_code == 0
    path = directory / "PostCallJobData.json"
    schema = json.loads(path.read_text())
    schema["properties"]["caller_number"] = {"type": "string", "description": "old field"}
    path.write_text(json.dumps(schema))

    result = runner.invoke(app, ["contracts", "check", str(directory)])
    assert result.exit_code == 1
    assert "breaking change" in result.stdout
    assert "caller_number" in result.stdout


def test_check_of_a_missing_snapshot_says_how_to_create_one(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["contracts", "check", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "switchboard contracts export" in result.stderr


def test_export_over_a_snapshot_refuses_a_change_without_a_new_version(
    runner: CliRunner, tmp_path: Path
) -> None:
    directory = tmp_path / "schemas"
    assert runner.invoke(app, ["contracts", "export", str(directory)]).exit_code == 0
    path = directory / "PostCallJobData.json"
    schema = json.loads(path.read_text())
    del schema["properties"]["call_status"]  # as if the code had just added it
    path.write_text(json.dumps(schema))

    result = runner.invoke(app, ["contracts", "export", str(directory)])

    assert result.exit_code == 1
    assert "the contracts' schemas changed: set contracts.__version__ to" in result.stderr
    assert "bump the version in contracts/__init__.py" in result.stderr
    assert "call_status" not in path.read_text()  # nothing was written
