"""The ``switchboard-contracts`` distribution: built from ``contracts/``, pydantic only.

Builds the wheel and sdist as ``make contracts-dist`` does (``uv build``: the sdist,
then the wheel from the sdist), reads their metadata and file lists, and installs the
wheel into a fresh virtual environment where it must validate a job and build its
message with nothing but pydantic beside it. The build and the install prefer the uv
cache (``--offline`` first) and fall back to the package index; each is bounded.
"""

from __future__ import annotations

import email.message
import email.parser
import json
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import contracts
from contracts.messages import dramatiq_message
from tests.builders import make_post_call_job

ROOT = Path(__file__).parents[2]
PROJECT = ROOT / "packages" / "switchboard-contracts"
NAME = "switchboard-contracts"
STEP_TIMEOUT_S = 150
"""Bound of one uv command (each runs at most twice: from the cache, then the index)."""

# The first test also waits for the module's build, the last installs into a venv.
pytestmark = [pytest.mark.dist, pytest.mark.timeout(4 * STEP_TIMEOUT_S + 60)]


def _uv(*args: str) -> None:
    """Run uv from the cache alone, or with the index when the cache lacks something."""
    failures = []
    for offline in (True, False):
        command = [sys.executable, "-m", "uv", *args, *(["--offline"] if offline else [])]
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False
        )
        if run.returncode == 0:
            return
        failures.append(run.stderr[-2000:])
    pytest.fail(f"uv {' '.join(args)} failed:\n" + "\n".join(failures))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist, built as ``make contracts-dist`` builds them."""
    out = tmp_path_factory.mktemp("contracts-dist")
    _uv("build", str(PROJECT), "--out-dir", str(out))
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _repository_files() -> set[str]:
    sources = {f"contracts/{p.name}" for p in (ROOT / "contracts").glob("*.py")}
    schemas = {f"contracts/schemas/{p.name}" for p in (ROOT / "contracts/schemas").glob("*.json")}
    return sources | schemas | {"contracts/py.typed"}


def test_the_wheel_carries_the_contracts_version_and_requires_pydantic_only(
    built: tuple[Path, Path],
) -> None:
    wheel, _ = built
    fields = _metadata(wheel)
    assert fields["Name"] == NAME
    assert fields["Version"] == contracts.__version__
    requirements = [Requirement(r) for r in fields.get_all("Requires-Dist") or []]
    assert [r.name for r in requirements] == ["pydantic"]
    assert wheel.name == f"switchboard_contracts-{contracts.__version__}-py3-none-any.whl"


def test_the_wheel_holds_the_contracts_package_and_its_schemas_and_nothing_else(
    built: tuple[Path, Path],
) -> None:
    wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packaged = {n for n in names if ".dist-info/" not in n}
    assert packaged == _repository_files()
    assert {n.split("/")[0] for n in names} == {
        "contracts",
        f"switchboard_contracts-{contracts.__version__}.dist-info",
    }


def test_the_sdist_holds_the_sources_as_files_so_it_builds_anywhere(
    built: tuple[Path, Path],
) -> None:
    _, sdist = built
    prefix = f"switchboard_contracts-{contracts.__version__}/"
    with tarfile.open(sdist) as archive:
        members = {m.name.removeprefix(prefix): m for m in archive.getmembers()}
    assert _repository_files() <= members.keys()
    assert all(members[name].isfile() for name in _repository_files())
    assert {"pyproject.toml", "README.md"} <= members.keys()


def _runtime_closure(name: str) -> dict[str, str]:
    """``name`` and everything it needs at run time here, by name, with versions."""
    found: dict[str, str] = {}
    todo = [name]
    while todo:
        current = canonicalize_name(todo.pop())
        if current in found:
            continue
        found[current] = metadata.version(current)
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


PUBLISH = """
import json, pathlib, sys
import contracts
from contracts.messages import contract_by_name, dramatiq_message
job = contract_by_name("PostCallJobData", json.loads(sys.argv[1]))
package = pathlib.Path(contracts.__file__).parent
print(json.dumps({
    "package": str(package),
    "message": dramatiq_message(job),
    "schemas": sorted(p.name for p in package.glob("schemas/*.json")),
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


def test_the_wheel_alone_in_a_fresh_venv_validates_a_job_and_builds_its_message(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    wheel, _ = built
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    # pydantic and its dependencies at the versions this project runs: in the uv cache.
    pins = _runtime_closure("pydantic")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()))
    _uv("venv", str(venv), "--python", sys.executable, "--no-project")
    _uv("pip", "install", "--python", str(python), "-c", str(constraints), str(wheel))

    listed = subprocess.run(
        [sys.executable, "-m", "uv", "pip", "list", "--python", str(python), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=True,
    )
    installed = {canonicalize_name(p["name"]) for p in json.loads(listed.stdout)}
    assert installed == {NAME, *pins}

    job = make_post_call_job()
    run = subprocess.run(
        [str(python), "-I", "-c", PUBLISH, job.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=True,
        cwd=tmp_path,  # not the repository: its contracts/ must not be the one imported
    )
    result = json.loads(run.stdout)
    assert Path(result["package"]).is_relative_to(venv)
    assert result["message"] == dramatiq_message(job)
    assert result["schemas"] == sorted(p.name for p in (ROOT / "contracts/schemas").glob("*.json"))
    assert not {"dramatiq", "redis", "infra", "actors", "producers"} & set(result["modules"])
