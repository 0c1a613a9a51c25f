"""``switchboard purge`` and ``switchboard forget`` on the CLI's own SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from contracts.errors import PermanentError
from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.bus.publishing import Envelope
from infra.cli.main import app
from infra.store.audit import SqlAudit
from infra.store.tables import CALL_LOGS, JOBS, USERS, VECTORS
from infra.store.vectors import SqlVectorIndex
from tests.builders import make_post_call_job
from tests.bus.support import kill
from tests.cli.conftest import cli_broker
from tests.fakes import FixedClock
from tests.seeds import LONG_AGO, Seeder, count

WIDE = {"COLUMNS": "250"}


@pytest.fixture
def seed(engine: sa.Engine) -> Seeder:
    return Seeder(engine, FixedClock(LONG_AGO))


def _reject(payload: dict[str, Any]) -> None:
    raise PermanentError(f"vendor refused {payload.get('conversation_id')}")


@pytest.fixture
def broker(
    engine: sa.Engine, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SwitchboardBroker]:
    """A broker whose every pipeline actor rejects what it gets, at once."""
    with cli_broker(redis_url, monkeypatch, "sbforget", _reject) as built:
        yield built


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE)


def _rows(output: str) -> dict[str, list[str]]:
    """The printed table's rows by their first cell."""
    rows = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]
    return {row[0]: row[1:] for row in rows}


# purge ---------------------------------------------------------------------------------


def test_purge_dry_run_counts_what_would_go_and_changes_nothing(
    engine: sa.Engine, seed: Seeder, tenant_id: str
) -> None:
    seed.call("conv_old", tenant_id=tenant_id, vectors=SqlVectorIndex(engine))
    seed.tick("completed")

    result = _run("purge", "--dry-run")

    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["calls"][:1] == ["365 days"]
    assert rows["calls"][2:] == ["1", "jobs 1, job steps 1, call logs 1"]
    assert rows["completed jobs"][2] == "1"
    assert rows["audit log"] == ["for ever", "-", "-", "append-only: never purged"]
    assert "Dry run: would delete 7 rows (vectors not counted); nothing changed." in result.stdout
    assert count(engine, JOBS) == 2
    assert SqlAudit(engine).entries() == []


def test_purge_deletes_what_is_older_than_its_retention_and_audits_the_run(
    engine: sa.Engine, seed: Seeder, tenant_id: str
) -> None:
    index = SqlVectorIndex(engine)
    seed.call("conv_old", tenant_id=tenant_id, vectors=index, chunks=2)
    seed.clock.at = datetime.now(UTC) - timedelta(days=2)
    seed.call("conv_new", tenant_id=tenant_id, vectors=index)
    seed.tick("completed")

    result = _run("purge", "--as", "ops")

    assert result.exit_code == 0, result.output
    assert _rows(result.stdout)["calls"][2:] == [
        "1",
        "jobs 1, job steps 1, call logs 1, vectors 3",
    ]
    assert "Deleted 6 rows; recorded in the audit log." in result.stdout
    assert count(engine, CALL_LOGS) == 1
    assert count(engine, VECTORS) == 4
    [entry] = SqlAudit(engine).entries(action="retention")
    assert (entry.actor, entry.reason) == ("ops", "the configured retention")
    assert entry.outcome == "calls 1; 6 rows"


def test_purge_older_than_applies_to_every_kind_but_never_to_running_jobs(
    engine: sa.Engine, seed: Seeder, tenant_id: str
) -> None:
    seed.clock.at = datetime.now(UTC) - timedelta(days=3)
    done, running = seed.tick("completed"), seed.tick("processing")
    busy = seed.call("conv_busy", tenant_id=tenant_id, status="processing")
    seed.user(tenant_id)
    SqlAudit(engine, clock=seed.clock).record(
        actor="ana", action="replay", target="m1", reason="INC-1", outcome="replayed"
    )

    result = _run("purge", "--older-than", "1", "--reason", "disk full", "--as", "ops")

    assert result.exit_code == 0, result.output
    assert "dead letters are kept 30 days" in result.stderr
    completed = _rows(result.stdout)["completed jobs"]
    assert (completed[0], completed[2]) == ("1 day", "1")
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(JOBS.c.id)).scalars())
    assert left == {running, busy}
    assert done not in left
    assert count(engine, USERS) == 1
    assert [e.action for e in SqlAudit(engine).entries()] == ["retention", "replay"]


def test_purge_refuses_an_age_below_one_day() -> None:
    result = _run("purge", "--older-than", "0")

    assert result.exit_code == 2
    assert "--older-than" in result.output


# forget --------------------------------------------------------------------------------


def test_forget_call_deletes_it_with_its_dead_letters_and_a_second_time_finds_nothing(
    engine: sa.Engine, seed: Seeder, tenant_id: str, broker: SwitchboardBroker
) -> None:
    seed.call("conv_1", tenant_id=tenant_id, vectors=SqlVectorIndex(engine), chunks=1)
    seed.call("conv_2", tenant_id=tenant_id)
    contract = make_post_call_job(job_id="job-dead", tenant_id=tenant_id, conversation_id="conv_1")
    [dead] = kill(broker, Envelope.of(contract))

    first = _run("forget", "call", "conv_1", "--tenant", "acme", "--reason", "DSR-1", "--as", "ana")
    second = _run(
        "forget", "call", "conv_1", "--tenant", "acme", "--reason", "DSR-1", "--as", "ana"
    )

    assert first.exit_code == 0, first.output
    rows = _rows(first.stdout)
    assert rows["call logs"] == ["1"]
    assert rows["vectors"] == ["2"]
    assert rows["dead letters"] == ["1"]
    assert DeadLetters(broker.client, broker.namespace).get(dead) is None
    assert count(engine, CALL_LOGS) == 1
    assert second.exit_code == 0, second.output
    assert "Nothing left of call acme/conv_1 (forgotten already, or never stored)." in second.stdout
    audit = SqlAudit(engine).entries()
    assert [(e.action, e.actor) for e in audit] == [
        ("forget", "ana"),
        ("forget", "ana"),
        ("purge", "ana"),
    ]
    assert audit[0].outcome == "nothing left"
    assert audit[2].target == dead


def test_forget_user_deletes_their_calls_by_number_and_their_row(
    engine: sa.Engine, seed: Seeder, tenant_id: str, broker: SwitchboardBroker
) -> None:
    user = seed.user(tenant_id, phone="+447700900123")
    seed.outbound(tenant_id=tenant_id, user_id=user, status="completed", phone="+447700900123")
    seed.call("conv_them", tenant_id=tenant_id, caller_number="+447700900123")

    result = _run("forget", "user", user, "--reason", "DSR-2", "--as", "ana")

    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["users"] == ["1"]
    assert rows["outbound calls"] == ["1"]
    assert rows["jobs"] == ["1"]
    assert "Calls from or to their number: conv_them" in result.stdout
    assert count(engine, USERS) == 0


def test_forget_user_on_a_shared_line_leaves_its_calls_and_says_how_to_forget_them(
    engine: sa.Engine, seed: Seeder, tenant_id: str, broker: SwitchboardBroker
) -> None:
    user = seed.user(tenant_id, phone="+447700900123")
    sibling = seed.user(tenant_id, phone="+447700900123")
    seed.call("conv_shared", tenant_id=tenant_id, caller_number="+447700900123")

    result = _run("forget", "user", user, "--reason", "DSR-4", "--as", "ana")

    assert result.exit_code == 0, result.output
    assert _rows(result.stdout)["users"] == ["1"]
    assert f"Left 1 call(s) from or to their number, which is also user {sibling}'s" in (
        " ".join(result.stdout.split())
    )
    assert "switchboard forget call" in result.stdout
    assert count(engine, USERS) == 1


def test_forget_without_a_broker_deletes_the_rows_and_says_the_dead_letters_were_kept(
    engine: sa.Engine, seed: Seeder, tenant_id: str
) -> None:
    seed.call("conv_1", tenant_id=tenant_id)

    result = _run("forget", "call", "conv_1", "--tenant", "acme", "--reason", "DSR-3")

    assert result.exit_code == 1
    assert _rows(result.stdout)["call logs"] == ["1"]
    assert "kept dead letters: no broker to read them from" in result.stderr
    assert "run the same command again" in result.stderr


def test_forget_names_what_is_wrong_with_its_arguments(engine: sa.Engine, tenant_id: str) -> None:
    unknown = _run("forget", "call", "conv_1", "--tenant", "nope", "--reason", "x")
    bad_id = _run("forget", "call", "conv 1", "--tenant", "acme", "--reason", "x")
    no_reason = _run("forget", "user", "usr_1", "--reason", " ")

    assert (unknown.exit_code, bad_id.exit_code, no_reason.exit_code) == (2, 2, 2)
    assert "no tenant named 'nope'" in unknown.stderr
    assert "is not a conversation id" in bad_id.stderr
    assert "--reason must say why" in no_reason.stderr
    assert count(engine, JOBS) == 0
