"""``switchboard dlq review``: jobs failed at intake and calls of unknown outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from contracts.users import NewUser
from infra.cli.main import app
from infra.store.dialing import SqlCallBook
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobLedger
from infra.store.tenants import SqlTenantDirectory
from infra.store.users import SqlUsers
from tests.builders import make_inbox_entry, make_post_call_job
from tests.fakes import FixedClock


def test_review_lists_what_needs_a_person_and_says_when_nothing_does(
    runner: CliRunner, data_dir: Path
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert "nothing needs review" in runner.invoke(app, ["dlq", "review"]).stdout

    engine = create_engine(f"sqlite:///{data_dir / 'switchboard.db'}")
    try:
        tenant, _ = SqlTenantDirectory(engine).add_tenant("acme")
        ledger = SqlJobLedger(engine)
        job = ledger.accept(make_inbox_entry(make_post_call_job(tenant_id=tenant.id)))
        assert ledger.fail_at_intake(job.job_id, error="failed at intake: x no longer validates")
        now = datetime.now(UTC)
        clock = FixedClock(now)
        SqlUsers(engine, clock=clock).add_user(
            tenant.id,
            NewUser(
                name="Ada",
                phone="+14155550100",
                local_tz="UTC",
                call_time=(now - timedelta(minutes=1)).time(),
            ),
        )
        book = SqlCallBook(engine, clock=clock)
        [call] = book.claim_daily_calls(now, "job_tick")
        assert book.start_placing(call.id)
        assert not book.start_placing(call.id)  # a delivery that died mid-request: unknown
    finally:
        engine.dispose()

    shown = runner.invoke(app, ["dlq", "review"], env={"COLUMNS": "100"})
    document = json.loads(runner.invoke(app, ["dlq", "review", "--json"]).stdout)

    assert shown.exit_code == 0, shown.output
    assert job.job_id in shown.stdout
    assert call.id in shown.stdout
    assert "no longer validates" in shown.stdout
    assert [j["job_id"] for j in document["failed_at_intake"]] == [job.job_id]
    assert [(c["id"], c["status"]) for c in document["unknown_calls"]] == [(call.id, "unknown")]
