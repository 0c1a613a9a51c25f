"""The committed schema snapshot and the breaking-change check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import contracts
from infra.schemas import ASYNCAPI_FILE, check, drift, export_schemas, version_problems

SNAPSHOT = Path(__file__).parents[2] / "contracts" / "schemas"


def test_committed_schemas_match_the_code() -> None:
    assert drift(SNAPSHOT) == [], "run `make schemas` and commit contracts/schemas"


def test_the_code_has_no_breaking_change_against_the_snapshot() -> None:
    assert check(SNAPSHOT) == []


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    copy = tmp_path / "schemas"
    shutil.copytree(SNAPSHOT, copy)
    return copy


def _edit(path: Path, change: str) -> None:
    schema = json.loads(path.read_text())
    if change == "extra-old-field":
        schema["properties"]["legacy_field"] = {"type": "string"}
    elif change == "retype":
        schema["properties"]["duration_secs"] = {"type": "string"}
    elif change == "optional-now-required":
        schema["required"] = [r for r in schema["required"] if r != "agent_id"]
    elif change == "enum-value":
        schema["$defs"]["TranscriptTurn"]["properties"]["role"]["enum"].append("system")
    elif change == "looser-pattern":
        del schema["properties"]["agent_id"]["pattern"]
    elif change == "longer-max":
        schema["properties"]["agent_id"]["maxLength"] = 256
    elif change == "no-maximum":
        del schema["properties"]["duration_secs"]["anyOf"][0]["maximum"]
    path.write_text(json.dumps(schema))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("extra-old-field", "PostCallJobData.legacy_field: property removed"),
        ("retype", "PostCallJobData.duration_secs: type changed"),
        ("optional-now-required", "PostCallJobData.agent_id: newly required"),
        ("enum-value", "PostCallJobData.TranscriptTurn.role: enum values removed: ['system']"),
        ("looser-pattern", "PostCallJobData.agent_id: pattern '^[A-Za-z0-9._:-]+$' added"),
        ("longer-max", "PostCallJobData.agent_id: maxLength tightened from 256 to 128"),
        ("no-maximum", "PostCallJobData.duration_secs: maximum 2147483647 added"),
    ],
)
def test_check_reports_a_breaking_change(snapshot: Path, change: str, expected: str) -> None:
    _edit(snapshot / "PostCallJobData.json", change)
    problems = check(snapshot)
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_check_reports_a_removed_contract(snapshot: Path) -> None:
    (snapshot / "RetiredJobData.json").write_text(json.dumps({"properties": {}}))
    assert check(snapshot) == ["RetiredJobData: contract removed"]


def test_check_accepts_an_added_optional_property(snapshot: Path) -> None:
    path = snapshot / "PostCallJobData.json"
    schema = json.loads(path.read_text())
    del schema["properties"]["call_status"]  # the snapshot predates the field
    path.write_text(json.dumps(schema))
    assert check(snapshot) == []


def test_check_without_a_snapshot_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no contract schemas"):
        check(tmp_path)


def test_export_writes_one_schema_per_contract_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "Stale.json").write_text("{}")
    written = export_schemas(tmp_path)
    names = {p.name for p in written}
    assert "PostCallJobData.json" in names
    assert ASYNCAPI_FILE in names
    assert not (tmp_path / "Stale.json").exists()
    route = json.loads((tmp_path / "PostCallJobData.json").read_text())["x-switchboard"]
    assert route == {"queue": "calls.transcript", "actor": "fetch_transcript", "schema_version": 1}


def _set_snapshot_version(snapshot: Path, version: str) -> None:
    path = snapshot / ASYNCAPI_FILE
    document = json.loads(path.read_text())
    document["info"]["version"] = version
    path.write_text(json.dumps(document))


def _drop_property(snapshot: Path, name: str) -> None:
    path = snapshot / "PostCallJobData.json"
    schema = json.loads(path.read_text())
    del schema["properties"][name]  # the snapshot predates the field: an additive change
    path.write_text(json.dumps(schema))


def test_the_committed_snapshot_has_the_contracts_version() -> None:
    assert version_problems(SNAPSHOT) == []
    document = json.loads((SNAPSHOT / ASYNCAPI_FILE).read_text())
    assert document["info"]["version"] == contracts.__version__


def test_an_additive_change_needs_a_new_minor_version(snapshot: Path) -> None:
    _set_snapshot_version(snapshot, contracts.__version__)
    _drop_property(snapshot, "call_status")
    major, minor, _ = contracts.__version__.split(".")

    assert version_problems(snapshot) == [
        "the contracts' schemas changed: set contracts.__version__ to "
        f"{major}.{int(minor) + 1}.0 (it is {contracts.__version__})"
    ]
    _set_snapshot_version(snapshot, "0.9.0")
    assert version_problems(snapshot) == []


def test_a_breaking_change_needs_a_new_major_version(snapshot: Path) -> None:
    major = int(contracts.__version__.split(".")[0])
    _edit(snapshot / "PostCallJobData.json", "extra-old-field")
    _set_snapshot_version(snapshot, f"{major}.0.0")

    [problem] = version_problems(snapshot)
    assert problem.startswith("1 breaking change(s) need a new major version")
    assert f"to {major + 1}.0.0" in problem
    _set_snapshot_version(snapshot, f"{major - 1}.4.0")
    assert version_problems(snapshot) == []


def test_the_version_never_goes_back(snapshot: Path) -> None:
    major = int(contracts.__version__.split(".")[0])
    _set_snapshot_version(snapshot, f"{major}.99.0")
    assert version_problems(snapshot) == [
        f"contracts.__version__ {contracts.__version__} is older than the snapshot's {major}.99.0"
    ]


def test_a_directory_without_a_snapshot_has_no_version_to_follow(tmp_path: Path) -> None:
    assert version_problems(tmp_path) == []
