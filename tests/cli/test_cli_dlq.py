from __future__ import annotations

import json
import shlex
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from contracts import CONTRACTS, Contract
from contracts.errors import PermanentError
from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.bus.publishing import Envelope
from infra.bus.queues import queue_depths
from infra.cli import dlq as dlq_commands
from infra.cli.bus import parse_since
from infra.cli.main import app
from infra.store.audit import SqlAudit
from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger
from infra.store.progress import SqlJobProgress
from infra.store.records import MessageRef
from tests.builders import make_inbox_entry, make_post_call_job, make_transcribed
from tests.bus.support import START_MS, bury, kill
from tests.cli.conftest import cli_broker

WIDE = {"COLUMNS": "250"}


def _reject(payload: dict[str, Any]) -> None:
    if str(payload.get("conversation_id", "")).startswith("conv_value"):
        raise ValueError(f"cannot parse {payload['conversation_id']}")
    raise PermanentError(f"vendor refused {payload.get('conversation_id')}")


@pytest.fixture
def broker(
    engine: sa.Engine, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SwitchboardBroker]:
    """A broker whose every pipeline actor rejects what it gets, at once."""
    with cli_broker(redis_url, monkeypatch, "sbdlq", _reject) as built:
        yield built


def _letters(broker: SwitchboardBroker) -> DeadLetters:
    return DeadLetters(broker.client, broker.namespace)


@dataclass(frozen=True)
class FailedJob:
    """A job of the store whose message died: its dead letter's id and its contract."""

    message_id: str
    contract: Contract


def _failed_job(engine: sa.Engine, broker: SwitchboardBroker, contract: Contract) -> FailedJob:
    """A job accepted, started and failed in the store, its message dead on the bus."""
    SqlJobLedger(engine).accept(make_inbox_entry(contract, source="test"))
    [message_id] = kill(broker, Envelope.of(contract))
    progress = SqlJobProgress(engine)
    message = MessageRef(contract.idempotency_key, contract.route.actor, 0)
    progress.message_started(contract.job_id, message)
    progress.message_failed(
        contract.job_id, message, error="PermanentError: refused", dead_letter_id=message_id
    )
    return FailedJob(message_id, contract)


def _job_status(engine: sa.Engine, job_id: str) -> str:
    view = SqlJobQueries(engine).job_view(job_id, tenant_id=None)
    assert view is not None
    return view.status


def _dlq(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["dlq", *args], env={**WIDE, **(env or {})})


def _ok(*args: str, env: dict[str, str | None] | None = None) -> Result:
    result = _dlq(*args, env=env)
    assert result.exit_code == 0, result.output
    return result


def _rows(output: str) -> list[list[str]]:
    """The cells of each row of the printed table."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def _by_id(output: str) -> dict[str, list[str]]:
    """The rows of a dead-letter table by id."""
    return {row[0]: row[1:] for row in _rows(output)}


def _ready(broker: SwitchboardBroker, queue: str) -> int:
    return queue_depths(broker.client, broker.namespace, [queue])[queue].ready


# list ----------------------------------------------------------------------------


def test_list_shows_each_dead_letter_whole_in_a_table(
    broker: SwitchboardBroker, tenant_id: str
) -> None:
    job = make_post_call_job(tenant_id=tenant_id, conversation_id="conv_dead_1")
    [message_id] = kill(broker, Envelope.of(job))

    # A terminal narrower than the table: the id must still print whole, on one line.
    result = _ok("list", env={"COLUMNS": "60"})

    rows = _by_id(result.stdout)
    assert list(rows) == [message_id]
    queue, actor, contract, error, attempts, dead_at, job_id = rows[message_id]
    assert (queue, actor, contract, attempts, job_id) == (
        "calls.transcript",
        "fetch_transcript",
        "PostCallJobData",
        "1",
        job.job_id,
    )
    assert error == "PermanentError: vendor refused conv_dead_1"
    assert abs(datetime.fromisoformat(dead_at).replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(
        minutes=1
    )


def test_list_filters_by_queue_actor_error_time_and_tenant(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    post_call = make_post_call_job(tenant_id=tenant_id, conversation_id="conv_a")
    transcribed = make_transcribed(tenant_id="tenant-other", conversation_id="conv_b")
    unparsable = make_post_call_job(tenant_id=tenant_id, conversation_id="conv_value_c")
    first, second, third = kill(
        broker, Envelope.of(post_call), Envelope.of(transcribed), Envelope.of(unparsable)
    )

    def listed(*filters: str) -> set[str]:
        return set(_by_id(_ok("list", *filters).stdout))

    assert listed() == {first, second, third}
    assert listed("--queue", "calls.analyze") == {second}
    assert listed("--actor", "fetch_transcript") == {first, third}
    assert listed("--error", "ValueError") == {third}
    assert listed("--error", "PermanentError", "--queue", "calls.transcript") == {first}
    assert listed("--since", "10m") == {first, second, third}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _ok("list", "--since", future).stdout.strip() == f"no dead letters (since {future})"
    assert listed("--tenant", "acme") == {first, third}  # by name
    assert listed("--tenant", "tenant-other") == {second}  # by id, of no tenant here
    typo = _dlq("list", "--tenant", "acmee")
    assert "no tenant has the name or id 'acmee'" in " ".join(typo.stderr.split())
    assert listed("--limit", "1") <= {first, second, third}
    assert len(listed("--limit", "1")) == 1


def test_an_unknown_queue_or_actor_is_a_usage_error_listing_the_known_ones(
    broker: SwitchboardBroker,
) -> None:
    queue = _dlq("list", "--queue", "calls.nope")
    actor = _dlq("list", "--actor", "nobody")

    assert queue.exit_code == 2
    assert "unknown queue 'calls.nope'" in queue.stderr
    assert all(contract.route.queue in queue.stderr for contract in CONTRACTS)
    assert actor.exit_code == 2
    assert "unknown actor 'nobody'" in actor.stderr
    assert all(contract.route.actor in actor.stderr for contract in CONTRACTS)


def test_a_bad_since_is_a_usage_error(broker: SwitchboardBroker) -> None:
    for value in ("yesterday", "99999999d"):
        result = _dlq("list", "--since", value)
        assert result.exit_code == 2
        assert f"invalid --since {value!r}" in result.stderr


def test_since_reads_durations_and_iso_times_in_utc() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-03-01T08:00", now) == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert parse_since("2026-03-01T08:00+01:00", now) == datetime(2026, 3, 1, 7, 0, tzinfo=UTC)


def test_no_dead_letters_is_one_line(broker: SwitchboardBroker) -> None:
    assert _ok("list").stdout == "no dead letters\n"
    assert (
        _ok("list", "--queue", "calls.analyze").stdout == "no dead letters (queue calls.analyze)\n"
    )


def test_list_json_has_the_table_fields_and_the_payload(
    broker: SwitchboardBroker, tenant_id: str
) -> None:
    job = make_post_call_job(tenant_id=tenant_id)
    [message_id] = kill(broker, Envelope.of(job))

    [document] = json.loads(_ok("list", "--json").stdout)

    assert document["id"] == message_id
    assert document["queue"] == "calls.transcript"
    assert document["actor"] == "fetch_transcript"
    assert document["contract"] == "PostCallJobData"
    assert document["job_id"] == job.job_id
    assert document["tenant_id"] == tenant_id
    assert document["attempts"] == 1
    assert document["exception_type"] == "PermanentError"
    assert document["payload"] == job.model_dump(mode="json")
    assert datetime.fromisoformat(document["dead_at"]).tzinfo is not None


# show ----------------------------------------------------------------------------


def test_show_prints_payload_options_exception_traceback_and_the_job(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    failed = _failed_job(engine, broker, make_post_call_job(tenant_id=tenant_id))

    result = _ok("show", failed.message_id)

    assert f"Dead letter {failed.message_id}" in result.stdout
    assert f"Job:        {failed.contract.job_id}: failed (post_call, tenant acme)" in result.stdout
    assert "Attempts:   1" in result.stdout
    assert "Exception:  PermanentError: vendor refused conv_0001" in result.stdout
    assert '"conversation_id": "conv_0001"' in result.stdout
    assert f'"idempotency_key": "{failed.contract.idempotency_key}"' in result.stdout
    assert "Traceback (most recent call last)" in result.stdout


def test_show_of_an_unknown_id_says_where_to_find_ids(broker: SwitchboardBroker) -> None:
    result = _dlq("show", "no-such-id")
    assert result.exit_code == 1
    assert "no dead letter with id no-such-id" in result.stderr
    assert "dlq list" in result.stderr


# edit ----------------------------------------------------------------------------


def _editor(tmp_path: Path, body: str) -> dict[str, str | None]:
    """An $EDITOR that runs ``body`` with ``path`` (the file to edit) and ``json`` bound."""
    script = tmp_path / f"editor_{uuid.uuid4().hex[:6]}.py"
    script.write_text(f"import json, sys\npath = sys.argv[1]\n{body}\n", encoding="utf-8")
    return {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", "VISUAL": None}


def _setting(field: str, value: object) -> str:
    return (
        "data = json.load(open(path))\n"
        f"data[{field!r}] = {value!r}\n"
        "json.dump(data, open(path, 'w'), indent=2)"
    )


def test_an_edit_the_contract_accepts_is_kept_and_audited_with_its_diff(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str, tmp_path: Path
) -> None:
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id)))

    result = _ok(
        "edit", message_id, "--reason", "wrong duration", "--as", "ana",
        env=_editor(tmp_path, _setting("duration_secs", 120)),
    )  # fmt: skip

    assert f"kept the edited payload of {message_id}" in result.stdout
    letter = _letters(broker).get(message_id)
    assert letter is not None
    assert letter.payload["duration_secs"] == 120
    [entry] = SqlAudit(engine).entries(target=message_id)
    assert (entry.actor, entry.action, entry.reason, entry.outcome) == (
        "ana",
        "edit",
        "wrong duration",
        "kept",
    )
    assert entry.queue == "calls.transcript"
    assert entry.job_id == letter.message["options"]["job_id"]
    assert entry.diff is not None
    assert '-  "duration_secs": 95,' in entry.diff
    assert '+  "duration_secs": 120,' in entry.diff


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("open(path, 'w').write('{\"job_id\": ')", "rejected: invalid JSON: line 1 column 12"),
        (_setting("duration_secs", "long"), "duration_secs: Input should be a valid integer"),
        (_setting("timezone", "Mars/Olympus"), "timezone:"),
    ],
    ids=["invalid-json", "wrong-type", "bad-timezone"],
)
def test_a_rejected_edit_changes_nothing_and_is_audited(
    broker: SwitchboardBroker,
    engine: sa.Engine,
    tenant_id: str,
    tmp_path: Path,
    body: str,
    shown: str,
) -> None:
    job = make_post_call_job(tenant_id=tenant_id)
    [message_id] = kill(broker, Envelope.of(job))
    before = _letters(broker).get(message_id)

    result = _dlq("edit", message_id, "--reason", "try", env=_editor(tmp_path, body))

    assert result.exit_code == 1
    assert shown in result.stderr
    assert "nothing changed" in result.stderr
    assert f"hint: run `switchboard dlq edit {message_id} --reason …` again" in result.stderr
    assert _letters(broker).get(message_id) == before
    [entry] = SqlAudit(engine).entries(target=message_id)
    assert entry.outcome.startswith("rejected: ")
    assert entry.diff


def test_an_editor_that_cannot_start_gets_a_hint_to_name_another(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str, tmp_path: Path
) -> None:
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id)))
    missing = str(tmp_path / "no-such-editor")

    result = _dlq("edit", message_id, "--reason", "r", "--editor", missing)

    assert result.exit_code == 1
    assert "rejected: cannot edit:" in result.stderr
    assert "hint: pass --editor COMMAND, or set EDITOR" in result.stderr


def test_an_edit_is_rejected_when_the_editor_fails_or_the_contract_is_unknown(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str, tmp_path: Path
) -> None:
    envelope = Envelope.of(make_post_call_job(tenant_id=tenant_id))
    unknown = Envelope(
        envelope.queue, envelope.actor, envelope.payload, {**envelope.options, "contract": "Nope"}
    )
    known_id, unknown_id = kill(broker, envelope, unknown)
    failing = _editor(tmp_path, "sys.exit(3)")

    editor_failed = _dlq("edit", known_id, "--reason", "r", env=failing)
    no_contract = _dlq("edit", unknown_id, "--reason", "r", env=failing)

    assert editor_failed.exit_code == no_contract.exit_code == 1
    assert "the editor exited with status 3" in editor_failed.stderr
    assert "hint: an edit is kept only when the editor exits 0" in editor_failed.stderr
    assert "unknown contract 'Nope'" in no_contract.stderr
    assert f"drop it with `switchboard dlq purge {unknown_id}" in no_contract.stderr
    outcomes = {entry.target: entry.outcome for entry in SqlAudit(engine).entries()}
    assert outcomes == {
        known_id: "rejected: cannot edit: the editor exited with status 3",
        unknown_id: "rejected: unknown contract 'Nope': cannot check a payload",
    }


def test_an_edit_that_changes_nothing_says_so(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str, tmp_path: Path
) -> None:
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id)))
    before = _letters(broker).get(message_id)
    # Reformatted, same content.
    body = "data = json.load(open(path))\njson.dump(data, open(path, 'w'))"

    result = _ok("edit", message_id, "--reason", "look", env=_editor(tmp_path, body))

    assert f"unchanged: {message_id}" in result.stdout
    assert _letters(broker).get(message_id) == before
    [entry] = SqlAudit(engine).entries(target=message_id)
    assert (entry.outcome, entry.diff) == ("unchanged", None)


def test_edit_falls_back_to_visual(
    broker: SwitchboardBroker, tenant_id: str, tmp_path: Path
) -> None:
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id)))
    editor = _editor(tmp_path, _setting("duration_secs", 7))

    _ok("edit", message_id, "--reason", "r", env={"EDITOR": None, "VISUAL": editor["EDITOR"]})

    letter = _letters(broker).get(message_id)
    assert letter is not None
    assert letter.payload["duration_secs"] == 7


# replay --------------------------------------------------------------------------


def test_a_replay_requeues_the_message_and_takes_its_job_out_of_failed(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    failed = _failed_job(engine, broker, make_post_call_job(tenant_id=tenant_id))
    job_id = failed.contract.job_id
    assert _job_status(engine, job_id) == "failed"

    result = _ok("replay", failed.message_id, "--reason", "vendor fixed", "--as", "ana")

    assert f"replayed {failed.message_id} to calls.transcript" in result.stdout
    assert "Replayed 1, skipped 0 as invalid, 0 gone meanwhile." in result.stdout
    assert _letters(broker).get(failed.message_id) is None
    assert _ready(broker, "calls.transcript") == 1
    assert _job_status(engine, job_id) == "processing"
    [entry] = SqlAudit(engine).entries(target=failed.message_id)
    assert (entry.actor, entry.action, entry.reason, entry.outcome) == (
        "ana",
        "replay",
        "vendor fixed",
        "replayed",
    )
    assert (entry.queue, entry.job_id) == ("calls.transcript", job_id)


def test_replaying_twice_is_harmless_the_second_finds_it_gone(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id)))
    _ok("replay", message_id, "--reason", "first")

    again = _ok("replay", message_id, "--reason", "second")

    assert f"gone: {message_id} is no longer a dead letter" in again.stdout
    assert "Replayed 0, skipped 0 as invalid, 1 gone meanwhile." in again.stdout
    assert _ready(broker, "calls.transcript") == 1
    outcomes = [entry.outcome for entry in SqlAudit(engine).entries(target=message_id)]
    assert outcomes == ["gone", "replayed"]


def test_replay_all_replays_only_what_the_filters_select(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    post_calls = [
        make_post_call_job(tenant_id=tenant_id, conversation_id=f"conv_{n}", job_id=f"job-{n}")
        for n in range(3)
    ]
    jobs = [_failed_job(engine, broker, contract) for contract in post_calls]
    [other] = kill(broker, Envelope.of(make_transcribed(tenant_id=tenant_id)))

    result = _ok("replay", "--all", "--queue", "calls.transcript", "--reason", "outage over")

    assert "Replayed 3, skipped 0 as invalid, 0 gone meanwhile." in result.stdout
    assert "replaying" in result.stdout  # the progress bar, with several
    assert "3/3" in result.stdout
    assert [letter.message_id for letter in _letters(broker).list()] == [other]
    assert _ready(broker, "calls.transcript") == 3
    assert {_job_status(engine, job.contract.job_id) for job in jobs} == {"processing"}
    assert len(SqlAudit(engine).entries(action="replay")) == 3


def test_a_dry_run_lists_what_would_be_replayed_and_changes_nothing(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    failed = _failed_job(engine, broker, make_post_call_job(tenant_id=tenant_id))

    result = _ok("replay", "--all", "--dry-run", "--reason", "check")

    assert f"would replay {failed.message_id} (calls.transcript, job job-0001)" in result.stdout
    assert "Dry run: would replay 1, would skip 0 as invalid, 0 gone. Nothing changed." in (
        result.stdout
    )
    assert _letters(broker).get(failed.message_id) is not None
    assert _ready(broker, "calls.transcript") == 0
    assert _job_status(engine, failed.contract.job_id) == "failed"
    assert SqlAudit(engine).entries() == []


def test_an_invalid_payload_is_not_replayed_and_the_hint_says_to_edit_it(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    job = make_post_call_job(tenant_id=tenant_id)
    envelope = Envelope.of(job)
    broken = Envelope(envelope.queue, envelope.actor, {"conversation_id": "c1"}, envelope.options)
    [message_id] = kill(broker, broken)

    result = _dlq("replay", message_id, "--reason", "retry")

    assert result.exit_code == 1
    assert f"skipped {message_id}: invalid payload (job_id: Field required" in result.stdout
    assert "Replayed 0, skipped 1 as invalid, 0 gone meanwhile." in result.stdout
    assert "switchboard dlq edit" in result.stdout
    assert _letters(broker).get(message_id) is not None
    [entry] = SqlAudit(engine).entries(target=message_id)
    assert entry.outcome.startswith("skipped: invalid payload: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reason", "r"], "give ids or --all"),
        (["some-id", "--all", "--reason", "r"], "not both"),
        (["some-id", "--queue", "calls.analyze", "--reason", "r"], "--queue select with --all"),
    ],
)
@pytest.mark.parametrize("command", ["replay", "purge"])
def test_ids_and_all_are_exclusive_and_one_is_needed(
    broker: SwitchboardBroker, command: str, args: list[str], message: str
) -> None:
    result = _dlq(command, *args)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    "reason",
    [[], ["--reason", "  "], ["--reason", "x" * 501]],
    ids=["missing", "blank", "too-long"],
)
@pytest.mark.parametrize("command", [["replay", "x"], ["purge", "x"], ["edit", "x"]])
def test_a_write_without_a_reason_is_a_usage_error(
    broker: SwitchboardBroker, engine: sa.Engine, command: list[str], reason: list[str]
) -> None:
    result = _dlq(*command, *reason)
    assert result.exit_code == 2
    assert "--reason" in result.output
    assert SqlAudit(engine).entries() == []


# purge, export, audit ------------------------------------------------------------


def test_purge_deletes_the_dead_letters_and_audits_each(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str
) -> None:
    first, second = kill(
        broker,
        Envelope.of(make_post_call_job(tenant_id=tenant_id, conversation_id="conv_1")),
        Envelope.of(make_post_call_job(tenant_id=tenant_id, conversation_id="conv_2")),
    )

    dry = _ok("purge", "--all", "--dry-run", "--reason", "test data")
    assert "Dry run: would purge 2, 0 gone. Nothing changed." in dry.stdout
    assert len(_letters(broker).list()) == 2

    result = _dlq("purge", first, second, "no-such-id", "--reason", "test data")
    again = _ok("purge", first, "--reason", "test data")

    assert result.exit_code == 1
    assert "Purged 2, 0 gone meanwhile." in result.stdout
    assert "unknown: no-such-id is not a dead letter" in " ".join(result.stderr.split())
    assert _letters(broker).list() == []
    assert _ready(broker, "calls.transcript") == 0
    # Purged once already: gone, audited, and no error; a typo is never audited.
    assert "Purged 0, 1 gone meanwhile." in again.stdout
    outcomes = [(entry.target, entry.outcome) for entry in SqlAudit(engine).entries()]
    assert sorted(outcomes) == sorted([(first, "purged"), (second, "purged"), (first, "gone")])


def test_export_prints_one_json_line_per_dead_letter(
    broker: SwitchboardBroker, tenant_id: str
) -> None:
    job = make_post_call_job(tenant_id=tenant_id)
    [message_id] = kill(broker, Envelope.of(job), Envelope.of(make_transcribed()))[:1]

    lines = _ok("export", "--queue", "calls.transcript").stdout.splitlines()

    [document] = [json.loads(line) for line in lines]
    assert document["id"] == message_id
    assert document["payload"] == job.model_dump(mode="json")
    assert document["options"]["idempotency_key"] == job.idempotency_key
    assert document["exception_message"] == "vendor refused conv_0001"
    assert "Traceback" in document["traceback"]
    assert len(_ok("export").stdout.splitlines()) == 2


def test_audit_lists_actions_newest_first_and_as_json_with_the_diff(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str, tmp_path: Path
) -> None:
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id)))
    _ok(
        "edit", message_id, "--reason", "fix", "--as", "ana",
        env=_editor(tmp_path, _setting("duration_secs", 3)),
    )  # fmt: skip
    _ok("replay", message_id, "--reason", "go", "--as", "bo")

    table = _rows(_ok("audit").stdout)
    documents = json.loads(_ok("audit", "--json", "--action", "edit").stdout)

    assert [row[1:4] + row[-1:] for row in table] == [
        ["bo", "replay", message_id, "replayed"],
        ["ana", "edit", message_id, "kept"],
    ]
    [edit] = documents
    assert edit["target"] == message_id
    assert '+  "duration_secs": 3,' in edit["diff"]
    assert _ok("audit", "--target", "other").stdout == "no audit entries match\n"


def test_a_filter_reaches_dead_letters_older_than_the_newest_ten_thousand(
    broker: SwitchboardBroker,
) -> None:
    oldest = bury(broker, "calls.analyze", [START_MS + n for n in range(3)], error="TimeoutError")
    bury(broker, "calls.analyze", [START_MS + 1_000 + n for n in range(10_050)])

    exported = _ok("export", "--error", "TimeoutError")
    purged = _ok("purge", "--all", "--error", "TimeoutError", "--reason", "stale test letters")

    assert {json.loads(line)["id"] for line in exported.stdout.splitlines()} == set(oldest)
    assert "Purged 3, 0 gone meanwhile." in purged.stdout
    assert _letters(broker).count() == 10_050


def test_audit_refuses_an_action_it_does_not_record(engine: sa.Engine) -> None:
    result = _dlq("audit", "--action", "forgot")
    assert result.exit_code == 2
    assert "unknown action 'forgot'" in result.stderr
    assert "replay, edit, purge, forget, retention" in result.stderr


def test_purging_every_queue_asks_first_or_wants_yes(
    broker: SwitchboardBroker, engine: sa.Engine, tenant_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill(broker, Envelope.of(make_post_call_job(tenant_id=tenant_id, conversation_id="conv_1")))

    unattended = _dlq("purge", "--all", "--reason", "clean up")
    assert unattended.exit_code == 2
    assert "add --yes" in unattended.stderr
    monkeypatch.setattr(dlq_commands, "interactive", lambda: True)
    declined = CliRunner().invoke(
        app, ["dlq", "purge", "--all", "--reason", "clean up"], input="n\n", env=WIDE
    )
    assert declined.exit_code == 1
    assert "Purge every dead letter of every queue, for good?" in declined.output
    assert len(_letters(broker).list()) == 1

    confirmed = _ok("purge", "--all", "--yes", "--reason", "clean up")
    assert "Purged 1, 0 gone meanwhile." in confirmed.stdout
    assert _letters(broker).list() == []
