"""`switchboard api` and `dev`: an option given wins, else the setting, and bad values say so.

The processes are not started: `_run` and `Stack` are replaced by recorders, so what is
checked is the command line each would start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import processes
from infra.cli.main import app
from infra.cli.stack import ProcessSpec
from infra.settings import Settings


class Recorder:
    """Stands in for `_run` and `Stack`: keeps the specs it is given, starts nothing."""

    def __init__(self) -> None:
        self.specs: list[ProcessSpec] = []
        self.stop_timeout_s: float | None = None

    def run(
        self,
        _name: str,
        _settings: Settings,
        children: Any,
        stop_timeout_s: float | None = None,
        **_: Any,
    ) -> None:
        self.specs = children({})
        self.stop_timeout_s = stop_timeout_s

    def stack(
        self, specs: list[ProcessSpec], *_: Any, stop_timeout_s: float, **__: Any
    ) -> Recorder:
        self.specs = specs
        self.stop_timeout_s = stop_timeout_s
        return self

    def start(self) -> None:
        """Start nothing."""

    def supervise(self) -> int:
        return 0

    def api_argv(self) -> list[str]:
        [api] = [spec for spec in self.specs if spec.name == "api"]
        return api.argv


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(processes, "_run", recorder.run)
    monkeypatch.setattr(processes, "Stack", recorder.stack)
    monkeypatch.setattr(processes, "migrate", lambda _settings: None)
    monkeypatch.setattr(processes, "broker_url", lambda _settings: ("redis://127.0.0.1:1/0", None))
    return recorder


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("command", ["api", "dev"])
def test_the_port_comes_from_the_option_else_from_the_setting(
    command: str, runner: CliRunner, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_API__PORT", "8123")

    from_setting = runner.invoke(app, [command])
    setting_argv = recorder.api_argv()
    from_option = runner.invoke(app, [command, "--port", "8200"])

    assert (from_setting.exit_code, from_option.exit_code) == (0, 0), from_setting.output
    assert _option(setting_argv, "--port") == "8123"
    assert _option(recorder.api_argv(), "--port") == "8200"


@pytest.mark.parametrize(
    ("args", "wrong"),
    [
        (["api", "--port", "0"], "--port"),
        (["api", "--port", "70000"], "--port"),
        (["api", "--workers", "0"], "--workers"),
        (["worker", "--threads", "0"], "--threads"),
        (["dev", "--port", "0"], "--port"),
    ],
)
def test_a_value_out_of_range_is_a_usage_error_naming_the_option(
    args: list[str], wrong: str, runner: CliRunner, recorder: Recorder
) -> None:
    result = runner.invoke(app, args)

    assert result.exit_code == 2
    assert wrong in result.output
    assert recorder.specs == []


@pytest.mark.parametrize("command", ["worker", "dev"])
def test_worker_groups_get_their_shutdown_timeout_and_a_supervisor_that_waits_longer(
    command: str, runner: CliRunner, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_WORKER__SHUTDOWN_TIMEOUT_S", "42.5")

    result = runner.invoke(app, [command])

    assert result.exit_code == 0, result.output
    groups = [spec for spec in recorder.specs if spec.name.startswith("worker")]
    assert groups
    for spec in groups:
        assert _option(spec.argv, "--worker-shutdown-timeout") == "42500"
    assert recorder.stop_timeout_s == 42.5 + processes.STOP_MARGIN_S


def test_dev_points_the_telephony_simulator_at_its_own_api_port(
    runner: CliRunner, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["dev", "--port", "8321"])
    chosen = {spec.env.get("SWITCHBOARD_SIMULATOR__WEBHOOK_URL") for spec in recorder.specs}
    monkeypatch.setenv("SWITCHBOARD_SIMULATOR__WEBHOOK_URL", "http://127.0.0.1:9/hook")
    runner.invoke(app, ["dev", "--port", "8321"])
    kept = {spec.env.get("SWITCHBOARD_SIMULATOR__WEBHOOK_URL") for spec in recorder.specs}

    assert result.exit_code == 0, result.output
    assert chosen == {"http://127.0.0.1:8321/api/webhooks/callkaro"}
    assert kept == {"http://127.0.0.1:9/hook"}
