"""Settings: prefixes, nesting, the Node services' names, secrets, the example file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import LEGACY_NAMES, describe_variables, load_settings
from infra.settings_reference import EXAMPLE_ENV, README, readme_with_table, render_example_env


def test_nested_variables_use_the_prefix_and_double_underscore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_BROKER__NAMESPACE", "calls")
    monkeypatch.setenv("SWITCHBOARD_STEPS__MAX_RETRIES", "5")
    settings = load_settings()
    assert settings.broker.namespace == "calls"
    assert settings.steps.max_retries == 5


def test_the_node_services_variable_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.5:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db/app")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-legacy")
    monkeypatch.setenv("PINECONE_INDEX_NAME", "calls")
    settings = load_settings()
    assert settings.broker.url == "redis://10.0.0.5:6379/0"
    assert settings.database_url == "postgresql://app@db/app"
    assert settings.openai.api_key is not None
    assert settings.openai.api_key.get_secret_value() == "sk-legacy"
    assert settings.pinecone.index_name == "calls"


def test_switchboard_variables_win_over_the_legacy_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://legacy:6379")
    monkeypatch.setenv("SWITCHBOARD_BROKER__URL", "redis://new:6379")
    assert load_settings().broker.url == "redis://new:6379"


def test_secrets_never_show_in_the_settings_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELEVENLABS_WEBHOOK_SECRET", "wsec_do_not_print")
    settings = load_settings()
    assert "wsec_do_not_print" not in repr(settings)
    assert "wsec_do_not_print" not in str(settings.model_dump())


def test_without_a_database_url_sqlite_lives_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'switchboard.db'}"


def test_example_env_is_rendered_from_the_settings() -> None:
    assert EXAMPLE_ENV.read_text() == render_example_env(), "run `make docs`"
    for legacy in LEGACY_NAMES:
        assert legacy in EXAMPLE_ENV.read_text()


def test_the_readme_settings_table_is_rendered_from_the_settings() -> None:
    readme = README.read_text()
    assert readme_with_table(readme) == readme, "run `make docs`"
    for name, _default, _description in describe_variables():
        assert f"`{name}`" in readme


@pytest.mark.parametrize("name", ["failed_jobs_days", "calls_days"])
def test_records_with_dead_letters_must_outlive_them_by_a_day(name: str) -> None:
    with pytest.raises(
        ValidationError, match=rf"retention.{name} \(30\) must be 0 \(for ever\) or at least 31"
    ):
        load_settings(retention={name: 30})

    assert getattr(load_settings(retention={name: 31}).retention, name) == 31
    assert getattr(load_settings(retention={name: 0}).retention, name) == 0
    shorter = load_settings(
        broker={"dead_message_ttl_ms": 7 * 24 * 3600 * 1000}, retention={name: 8}
    )
    assert getattr(shorter.retention, name) == 8


def test_retention_days_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_RETENTION__COMPLETED_JOBS_DAYS", "3")
    monkeypatch.setenv("SWITCHBOARD_RETENTION__SCHEDULED", "false")

    retention = load_settings().retention

    assert (retention.completed_jobs_days, retention.scheduled) == (3, False)
