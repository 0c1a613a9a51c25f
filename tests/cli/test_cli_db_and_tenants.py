from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli.main import app
from infra.store.engine import create_engine
from infra.store.tenants import SqlTenantDirectory


def _upgrade(runner: CliRunner) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output


def _key(output: str) -> str:
    match = re.search(r"\bsb_[A-Za-z0-9_-]+", output)
    assert match, output
    return match.group(0)


def test_db_upgrade_creates_the_sqlite_file_in_the_data_dir(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    assert (data_dir / "switchboard.db").exists()
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 0, status.output
    assert "Up to date" in status.stdout


def test_db_status_of_an_empty_database_says_to_upgrade(runner: CliRunner, data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "switchboard.db").touch()
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 1
    assert "Revision: empty" in result.stdout
    assert "switchboard db upgrade" in result.stderr


def test_tenant_commands_refuse_an_unmigrated_database_with_a_hint(
    runner: CliRunner, data_dir: Path
) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "switchboard.db").touch()
    result = runner.invoke(app, ["tenants", "list"])
    assert result.exit_code == 1
    assert "not migrated" in result.stderr
    assert "switchboard db upgrade" in result.stderr
    assert "Traceback" not in result.output


def test_a_mistyped_sqlite_path_is_reported_not_created(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-dir" / "x.db"
    monkeypatch.setenv("SWITCHBOARD_DATABASE__URL", f"sqlite:///{missing}")

    listed = runner.invoke(app, ["tenants", "list"])
    status = runner.invoke(app, ["db", "status"])

    for result in (listed, status):
        assert result.exit_code == 1
        assert f"no database at {missing}" in " ".join(result.stderr.split())
        assert "SWITCHBOARD_DATABASE__URL" in result.stderr
    assert not missing.parent.exists()
    created = runner.invoke(app, ["db", "upgrade"])
    assert created.exit_code == 0, created.output
    assert f"(created now, at {missing}) is at revision" in " ".join(created.stdout.split())


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://u:secret@db/x", "postgresql+nodriver://u@db/x"]
)
def test_a_database_url_that_cannot_be_opened_is_one_line_naming_the_setting(
    runner: CliRunner, data_dir: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE__URL", url)

    for command in (["tenants", "list"], ["db", "upgrade"], ["db", "status"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "is not a database URL Switchboard can open" in result.stderr
        assert "SWITCHBOARD_DATABASE__URL" in result.stderr
        assert "secret" not in result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["api", "worker", "scheduler"])
def test_process_commands_refuse_an_unmigrated_database_before_starting_anything(
    runner: CliRunner, data_dir: Path, command: str
) -> None:
    result = runner.invoke(app, [command])
    assert result.exit_code == 1
    assert "no database at" in result.stderr
    assert "switchboard db upgrade" in result.stderr
    assert not (data_dir / "valkey.json").exists(), "no embedded broker was started"


def test_tenants_add_binds_the_agents_and_prints_a_working_key_once(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    result = runner.invoke(
        app,
        [
            "tenants", "add", "acme",
            "--agent", "agent_general",
            "--agent", "agent_sales",
            "--health-check-agent", "agent_health",
            "--timezone", "Europe/London",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "will not be shown again" in result.stdout
    key = _key(result.stdout)

    engine = create_engine(f"sqlite:///{data_dir / 'switchboard.db'}")
    try:
        directory = SqlTenantDirectory(engine)
        tenant = directory.tenant_for_key(key)
        assert tenant is not None
        assert tenant.name == "acme"
        assert tenant.timezone == "Europe/London"
        health = directory.agent("agent_health")
        assert health is not None
        assert health.kind == "health_check"
        general = directory.agent("agent_sales")
        assert general is not None
        assert general.kind == "general"
    finally:
        engine.dispose()


def test_tenants_list_shows_names_zones_and_agents_with_kinds(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    runner.invoke(app, ["tenants", "add", "acme", "--agent", "a1", "--health-check-agent", "h1"])
    runner.invoke(app, ["tenants", "add", "globex", "--agent", "g1", "--timezone", "Asia/Tokyo"])

    table = runner.invoke(app, ["tenants", "list"])
    assert table.exit_code == 0, table.output
    for text in ("acme", "globex", "Asia/Tokyo", "a1 (general)", "h1 (health_check)"):
        assert text in table.stdout

    listed = json.loads(runner.invoke(app, ["tenants", "list", "--json"]).stdout)
    assert {t["name"]: t["timezone"] for t in listed} == {"acme": "UTC", "globex": "Asia/Tokyo"}
    acme = next(t for t in listed if t["name"] == "acme")
    assert sorted((a["agent_id"], a["kind"]) for a in acme["agents"]) == [
        ("a1", "general"),
        ("h1", "health_check"),
    ]


def test_tenants_key_rotates_the_key_and_the_old_one_stops_working(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    old = _key(runner.invoke(app, ["tenants", "add", "acme", "--agent", "a1"]).stdout)
    result = runner.invoke(app, ["tenants", "key", "acme"])
    assert result.exit_code == 0, result.output
    new = _key(result.stdout)
    assert new != old
    engine = create_engine(f"sqlite:///{data_dir / 'switchboard.db'}")
    try:
        directory = SqlTenantDirectory(engine)
        assert directory.tenant_for_key(old) is None
        tenant = directory.tenant_for_key(new)
        assert tenant is not None
        assert tenant.name == "acme"
    finally:
        engine.dispose()


def test_an_unknown_tenant_gets_a_helpful_error(runner: CliRunner, data_dir: Path) -> None:
    _upgrade(runner)
    result = runner.invoke(app, ["tenants", "key", "nobody"])
    assert result.exit_code == 2
    assert "no tenant named 'nobody'" in result.stderr
    assert "switchboard tenants list" in result.stderr
    assert "Traceback" not in result.output


def test_a_duplicate_tenant_or_a_bad_zone_is_a_user_error(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    assert runner.invoke(app, ["tenants", "add", "acme", "--agent", "a1"]).exit_code == 0
    duplicate = runner.invoke(app, ["tenants", "add", "acme", "--agent", "a2"])
    assert duplicate.exit_code == 1
    assert "acme" in duplicate.stderr
    assert "pick another name" in duplicate.stderr
    zone = runner.invoke(app, ["tenants", "add", "b", "--agent", "b1", "--timezone", "Mars/Base"])
    assert zone.exit_code == 2
    assert "Mars/Base" in zone.stderr


def test_an_agent_of_another_tenant_is_not_moved_silently(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    assert runner.invoke(app, ["tenants", "add", "acme", "--agent", "a1"]).exit_code == 0
    result = runner.invoke(app, ["tenants", "add", "globex", "--agent", "a1"])
    assert result.exit_code == 1
    assert "already belongs to tenant 'acme'" in result.stderr
    assert "bind another agent id" in result.stderr, "no command unbinds an agent"
    listed = json.loads(runner.invoke(app, ["tenants", "list", "--json"]).stdout)
    assert [t["name"] for t in listed] == ["acme"]


def test_a_tenant_without_agents_is_refused(runner: CliRunner, data_dir: Path) -> None:
    result = runner.invoke(app, ["tenants", "add", "acme"])
    assert result.exit_code == 2
    assert "--agent" in result.stderr


def test_tenants_call_line_sets_shows_and_resets_the_outbound_agent_and_caller_id(
    runner: CliRunner, data_dir: Path
) -> None:
    _upgrade(runner)
    runner.invoke(app, ["tenants", "add", "acme", "--agent", "agent_general"])

    result = runner.invoke(
        app,
        ["tenants", "call-line", "acme", "--agent", "ck_agent_7", "--caller-id", "+14155550100"],
    )
    assert result.exit_code == 0, result.output
    assert "outbound agent ck_agent_7, caller id +14155550100" in result.stdout

    shown = runner.invoke(app, ["tenants", "call-line", "acme"])
    assert "ck_agent_7" in shown.stdout
    engine = create_engine(f"sqlite:///{data_dir / 'switchboard.db'}")
    try:
        assert SqlTenantDirectory(engine).call_line("acme") == ("ck_agent_7", "+14155550100")
    finally:
        engine.dispose()

    reset = runner.invoke(app, ["tenants", "call-line", "acme", "--reset"])
    assert "outbound agent (default), caller id (default)" in reset.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme", "--caller-id", "555-0100"], "invalid --caller-id"),
        (["acme", "--agent", "no spaces"], "invalid --agent"),
        (["globex", "--agent", "a1"], "no tenant named 'globex'"),
    ],
)
def test_tenants_call_line_refuses_bad_values_and_unknown_tenants(
    runner: CliRunner, data_dir: Path, args: list[str], message: str
) -> None:
    _upgrade(runner)
    runner.invoke(app, ["tenants", "add", "acme", "--agent", "agent_general"])

    result = runner.invoke(app, ["tenants", "call-line", *args])

    assert result.exit_code != 0
    assert message in result.stderr


@pytest.mark.parametrize("name", ["", "bad name", "x/y?z", ".dot", "a" * 65])
def test_a_tenant_name_that_cannot_go_into_a_url_as_it_is_is_refused(
    runner: CliRunner, data_dir: Path, name: str
) -> None:
    _upgrade(runner)
    result = runner.invoke(app, ["tenants", "add", name, "--agent", "a1"])
    assert result.exit_code == 2
    assert "invalid tenant name" in result.stderr
    assert "letters, digits and ._-" in result.stderr
