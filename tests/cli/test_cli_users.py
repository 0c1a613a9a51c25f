from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from infra.cli.main import app
from infra.store.dialing import SqlCallBook
from infra.store.engine import create_engine
from infra.store.users import SqlUsers
from tests.fakes import FixedClock

USER_ID = re.compile(r"\busr_[0-9a-f]{32}\b")
ADA = ["--name", "Ada Lovelace", "--phone", "+447700900123", "--tz", "Europe/London"]


@pytest.fixture
def migrated(runner: CliRunner, data_dir: Path) -> Iterator[sa.Engine]:
    """A migrated data dir with tenants acme and globex; an engine on its database."""
    for args in (
        ["db", "upgrade"],
        *(["tenants", "add", t, "--agent", f"ag_{t}"] for t in ("acme", "globex")),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{data_dir / 'switchboard.db'}")
    yield engine
    engine.dispose()


def add(runner: CliRunner, *args: str, tenant: str = "acme") -> str:
    result = runner.invoke(
        app, ["users", "add", "--tenant", tenant, *ADA, "--time", "09:30", *args]
    )
    assert result.exit_code == 0, result.output
    match = USER_ID.search(result.stdout)
    assert match, result.stdout
    return match.group(0)


def test_users_add_prints_the_id_and_the_next_call_local_and_utc(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    result = runner.invoke(
        app,
        ["users", "add", "--tenant", "acme", *ADA, "--time", "09:30", "--window", "09:00-11:00"],
    )

    assert result.exit_code == 0, result.output
    user_id = USER_ID.search(result.stdout)
    assert user_id, result.stdout
    user = SqlUsers(migrated).get_user(user_id.group(0), tenant_id=None)
    assert user is not None
    assert (user.name, user.phone, user.preferences.local_tz) == (
        "Ada Lovelace",
        "+447700900123",
        "Europe/London",
    )
    assert (str(user.preferences.window_start), str(user.preferences.window_end)) == (
        "09:00:00",
        "11:00:00",
    )
    assert user.next_call_at is not None
    local = user.next_call_at.astimezone(ZoneInfo("Europe/London"))
    assert f"{local:%Y-%m-%d} 09:30 Europe/London" in result.stdout
    assert f"({user.next_call_at:%Y-%m-%d %H:%M} UTC)" in result.stdout


def test_users_add_disabled_has_no_next_call(runner: CliRunner, migrated: sa.Engine) -> None:
    user_id = add(runner, "--disabled")

    user = SqlUsers(migrated).get_user(user_id, tenant_id=None)
    assert user is not None
    assert user.preferences.call_enabled is False
    assert user.next_call_at is None


@pytest.mark.parametrize(
    ("args", "option", "words"),
    [
        (["--tz", "Mars/Olympus_Mons"], "--tz", "unknown time zone"),
        (["--time", "25:00"], "--time", "hour value is outside"),
        (["--time", "half past"], "--time", "time format"),
        (["--phone", "07700 900123"], "--phone", "must be an E.164 number"),
        (["--name", ""], "--name", "at least 1 character"),
        (["--window", "10:00-11:00"], "--window", "must contain --time"),
        (["--window", "11:00-09:00"], "--window", "after the window's start"),
        (["--window", "09:00"], "--window", "HH:MM-HH:MM"),
        (["--window", "9h-11:00"], "--window", "time format"),
    ],
)
def test_users_add_refuses_an_invalid_value_naming_the_option(
    runner: CliRunner, data_dir: Path, args: list[str], option: str, words: str
) -> None:
    # Later options win: each case replaces one valid value. No database is needed:
    # values are checked before the store is opened.
    base = ["users", "add", "--tenant", "acme", *ADA, "--time", "09:30"]

    result = runner.invoke(app, [*base, *args])

    assert result.exit_code == 2
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith(f"error: invalid {option}: ")
    assert words in error
    assert hint.startswith("hint: give ")
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_users_add_to_an_unknown_tenant_says_how_to_add_one(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    result = runner.invoke(app, ["users", "add", "--tenant", "initech", *ADA, "--time", "09:30"])

    assert result.exit_code == 2
    assert "no tenant named 'initech'" in result.stderr
    assert "switchboard tenants list" in result.stderr, "a typo is likelier than a new tenant"
    assert "switchboard tenants add" in result.stderr
    assert SqlUsers(migrated).list_users(tenant_id=None) == []


def test_users_commands_refuse_an_unmigrated_database(runner: CliRunner, data_dir: Path) -> None:
    result = runner.invoke(app, ["users", "list"])

    assert result.exit_code == 1
    assert "switchboard db upgrade" in result.stderr


def test_users_list_shows_every_user_with_whole_ids(runner: CliRunner, migrated: sa.Engine) -> None:
    ada = add(runner)
    bob = runner.invoke(
        app,
        [
            "users", "add", "--tenant", "globex", "--name", "Bob [admin]",
            "--phone", "+14155550123", "--tz", "America/Argentina/Buenos_Aires",
            "--time", "21:15:30", "--disabled",
        ],
    )  # fmt: skip
    assert bob.exit_code == 0, bob.output

    result = runner.invoke(app, ["users", "list"])

    assert result.exit_code == 0, result.output
    assert ada in result.stdout
    bob_id = USER_ID.search(bob.stdout)
    assert bob_id
    bob_line = next(line for line in result.stdout.splitlines() if bob_id.group(0) in line)
    for cell in ("Bob [admin]", "+14155550123", "America/Argentina/Buenos_Aires", "21:15:30"):
        assert cell in bob_line
    assert re.search(r"\bno\b.*-.*globex", bob_line), bob_line


def test_users_list_of_a_tenant_shows_only_its_users(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    ada = add(runner)
    other = add(runner, tenant="globex")

    result = runner.invoke(app, ["users", "list", "--tenant", "acme"])

    assert result.exit_code == 0, result.output
    assert ada in result.stdout
    assert other not in result.stdout


def test_users_list_json_is_an_array_of_users(runner: CliRunner, migrated: sa.Engine) -> None:
    ada = add(runner, "--window", "09:00-10:00")

    result = runner.invoke(app, ["users", "list", "--json"])

    assert result.exit_code == 0, result.output
    [user] = json.loads(result.stdout)
    assert user["id"] == ada
    assert user["tenant"] == "acme"
    assert user["call_preferences"] == {
        "call_enabled": True,
        "call_time": "09:30:00",
        "local_tz": "Europe/London",
        "window_start": "09:00:00",
        "window_end": "10:00:00",
    }
    assert user["next_call_at"].endswith("+00:00")


def test_users_list_without_users_says_how_to_add_one(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    result = runner.invoke(app, ["users", "list"])

    assert result.exit_code == 0, result.output
    assert "switchboard users add" in result.stdout
    assert json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout) == []


def test_users_list_of_an_unknown_tenant_says_how_to_add_one(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    result = runner.invoke(app, ["users", "list", "--tenant", "initech"])

    assert result.exit_code == 2
    assert "switchboard tenants add" in result.stderr


def queue_two_calls(engine: sa.Engine, user_id: str) -> list[str]:
    """Queue the user's next call, then the one after; their ids, newest first."""
    ids: list[str] = []
    for tick in ("job-tick-1", "job-tick-2"):
        user = SqlUsers(engine).get_user(user_id, tenant_id=None)
        assert user is not None
        assert user.next_call_at is not None
        book = SqlCallBook(engine, clock=FixedClock(user.next_call_at))
        [call] = book.claim_daily_calls(user.next_call_at, tick)
        ids.insert(0, call.id)
    return ids


def test_users_show_prints_the_user_and_their_calls_newest_first(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    user_id = add(runner, "--window", "09:00-11:00")
    newest, oldest = queue_two_calls(migrated, user_id)

    result = runner.invoke(app, ["users", "show", user_id])

    assert result.exit_code == 0, result.output
    for words in (
        user_id,
        "Ada Lovelace",
        "acme",
        "+447700900123",
        "09:00-11:00",
        "Calls:       on",
    ):
        assert words in result.stdout
    assert newest in result.stdout
    assert result.stdout.index(newest) < result.stdout.index(oldest)
    assert result.stdout.count("queued") == 2


def test_users_show_json_has_the_user_and_their_calls(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    user_id = add(runner)
    newest = queue_two_calls(migrated, user_id)[0]

    result = runner.invoke(app, ["users", "show", user_id, "--json", "--limit", "1"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["id"], document["tenant"]) == (user_id, "acme")
    assert [call["id"] for call in document["calls"]] == [newest]
    assert document["calls"][0]["status"] == "queued"
    assert document["calls"][0]["attempt"] == 1


def test_users_show_without_calls_says_so(runner: CliRunner, migrated: sa.Engine) -> None:
    user_id = add(runner, "--disabled")

    result = runner.invoke(app, ["users", "show", user_id])

    assert result.exit_code == 0, result.output
    assert "daily calls are off" in result.stdout
    assert "No calls yet." in result.stdout


def test_users_show_of_an_unknown_user_points_to_the_list(
    runner: CliRunner, migrated: sa.Engine
) -> None:
    result = runner.invoke(app, ["users", "show", "usr_nobody"])

    assert result.exit_code == 2
    assert "no user usr_nobody" in result.stderr
    assert "switchboard users list" in result.stderr
