from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

import infra

CONFIG = Path(infra.__file__).parent / "deploy" / "gunicorn.conf.py"


def load() -> tuple[Config, dict[str, Any]]:
    namespace = runpy.run_path(str(CONFIG))
    config = Config()
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    return config, namespace


def test_the_gunicorn_config_uses_threads_after_fork_and_logs_to_stdout() -> None:
    config, _ = load()

    assert config.worker_class_str == "gthread"
    assert config.preload_app is False
    assert config.control_socket_disable is True
    assert config.accesslog == "-"
    assert 0 < config.graceful_timeout <= config.timeout


def test_child_exit_removes_only_the_dead_workers_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead = tmp_path / "gauge_livesum_4242.db"
    alive = tmp_path / "gauge_livesum_4343.db"
    counter = tmp_path / "counter_4242.db"
    for path in (dead, alive, counter):
        path.write_bytes(b"")
    _, namespace = load()

    namespace["child_exit"](None, SimpleNamespace(pid=4242))

    assert not dead.exists()
    assert alive.exists()
    assert counter.exists()


def test_child_exit_does_nothing_without_multiprocess_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    stray = tmp_path / "gauge_livesum_4242.db"
    stray.write_bytes(b"")
    _, namespace = load()

    namespace["child_exit"](None, SimpleNamespace(pid=4242))

    assert stray.exists()
