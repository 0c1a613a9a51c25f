from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI's settings at an empty data dir (SQLite inside it)."""
    for name in ("SWITCHBOARD_DATABASE__URL", "DATABASE_URL", "SWITCHBOARD_BROKER__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
