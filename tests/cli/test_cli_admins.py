"""``switchboard admins add | list | revoke``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from infra.cli.main import app
from infra.store.admins import TOKEN_PREFIX, SqlAdminTokens
from infra.store.engine import create_engine


def _upgrade(runner: CliRunner) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0


def test_admins_add_prints_the_token_once_and_list_never_does(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)

    added = runner.invoke(app, ["admins", "add", "ana", "--role", "viewer"])

    assert added.exit_code == 0, added.output
    token = next(line for line in added.stdout.splitlines() if line.startswith(TOKEN_PREFIX))
    engine = create_engine(f"sqlite:///{data_dir / 'switchboard.db'}")
    try:
        found = SqlAdminTokens(engine).for_token(token)
    finally:
        engine.dispose()
    assert found is not None
    assert found.role == "viewer"
    listed = runner.invoke(app, ["admins", "list"])
    assert "ana" in listed.stdout
    assert token not in listed.stdout
    documents = json.loads(runner.invoke(app, ["admins", "list", "--json"]).stdout)
    assert [(d["name"], d["role"], d["revoked_at"]) for d in documents] == [("ana", "viewer", None)]


def test_admins_revoke_and_the_errors_say_what_to_do(runner: CliRunner, data_dir: Path) -> None:
    _upgrade(runner)
    runner.invoke(app, ["admins", "add", "ana", "--role", "admin"])

    assert runner.invoke(app, ["admins", "revoke", "ana"]).exit_code == 0
    again = runner.invoke(app, ["admins", "revoke", "ana"])
    bad_role = runner.invoke(app, ["admins", "add", "bo", "--role", "root"])
    taken = runner.invoke(app, ["admins", "add", "ana", "--role", "admin"])
    malformed = runner.invoke(app, ["admins", "add", "ana maria", "--role", "admin"])

    assert again.exit_code == 2
    assert "no active token named 'ana'" in again.stderr
    assert bad_role.exit_code == 2
    assert "--role admin or --role viewer" in bad_role.stderr
    assert taken.exit_code == 1
    assert "exists already" in taken.stderr
    assert "`switchboard admins list` shows the names in use" in taken.stderr
    assert malformed.exit_code == 2
    assert "use 1 to 128 letters" in malformed.stderr
    assert "hint:" not in malformed.stderr, "the names in use do not help a malformed one"
