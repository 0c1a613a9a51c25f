"""Production refuses local adapters unless SWITCHBOARD_ALLOW_LOCAL names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from infra.local_adapters import (
    LOCAL_ADAPTERS,
    LocalAdapterRefused,
    check_embedded,
    check_local,
)
from infra.settings import LOCAL_ADAPTER_NAMES, Settings
from infra.store.vectors import SqlVectorIndex
from infra.vendors.openai_llm import OpenAIAnalyzer, OpenAIEmbedder
from infra.vendors.wiring import Adapters
from tests.standins.openai_server import OpenAIStandIn

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

WHAT_TO_SET = {
    "analyzer": "SWITCHBOARD_OPENAI__API_KEY",
    "embedder": "SWITCHBOARD_OPENAI__API_KEY",
    "vectors": "SWITCHBOARD_QDRANT__URL",
    "transcripts": "SWITCHBOARD_ELEVENLABS__API_KEY",
    "telephony": "SWITCHBOARD_CALLKARO__API_KEY",
    "broker": "SWITCHBOARD_BROKER__URL",
    "database": "SWITCHBOARD_DATABASE__URL",
}


@pytest.fixture(autouse=True)
def no_allow_local_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_ALLOW_LOCAL", raising=False)
    monkeypatch.delenv("SWITCHBOARD_ENVIRONMENT", raising=False)


def _settings(tmp_path: Path, **fields: Any) -> Settings:
    # Vendors, broker and database explicitly unset, whatever the environment says.
    unset: dict[str, Any] = {
        "openai": {"api_key": None},
        "pinecone": {"api_key": None, "index_name": None, "index_host": None},
        "qdrant": {"url": None},
        "elevenlabs": {"api_key": None},
        "broker": {"url": None},
        "database": {"url": None},
    }
    return Settings.model_validate({"data_dir": tmp_path} | unset | fields)


def test_every_local_adapter_has_an_instruction() -> None:
    assert set(LOCAL_ADAPTERS) == set(LOCAL_ADAPTER_NAMES) == set(WHAT_TO_SET)


@pytest.mark.parametrize("name", LOCAL_ADAPTER_NAMES)
def test_production_refuses_each_local_adapter_saying_what_to_set(
    tmp_path: Path, name: str
) -> None:
    production = _settings(tmp_path, environment="production")

    with pytest.raises(LocalAdapterRefused) as refused:
        check_local(production, name)

    message = str(refused.value)
    assert f"local {name}" in message
    assert WHAT_TO_SET[name] in message
    assert message.endswith(f"SWITCHBOARD_ALLOW_LOCAL={name}")


@pytest.mark.parametrize("name", LOCAL_ADAPTER_NAMES)
def test_development_never_refuses_a_local_adapter(tmp_path: Path, name: str) -> None:
    development = _settings(tmp_path, environment="development")

    check_local(development, name)  # returns: nothing to assert but that it does not raise
    assert development.allowed_local == frozenset()


def test_allow_local_lets_the_named_adapters_through_and_no_others(tmp_path: Path) -> None:
    production = _settings(tmp_path, environment="production", allow_local=" analyzer, vectors ,")

    check_local(production, "analyzer")
    check_local(production, "vectors")
    for name in set(LOCAL_ADAPTER_NAMES) - {"analyzer", "vectors"}:
        with pytest.raises(LocalAdapterRefused, match=f"SWITCHBOARD_ALLOW_LOCAL={name}"):
            check_local(production, name)
    assert production.allowed_local == {"analyzer", "vectors"}


def test_allow_local_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENVIRONMENT", "production")
    monkeypatch.setenv("SWITCHBOARD_ALLOW_LOCAL", "transcripts,database")

    production = Settings(data_dir=tmp_path)

    assert production.environment == "production"
    assert production.allowed_local == {"transcripts", "database"}
    check_local(production, "transcripts")
    with pytest.raises(LocalAdapterRefused, match="local analyzer"):
        check_local(production, "analyzer")


@pytest.mark.parametrize("value", ["analyser", "vectors,pinecone", "Analyzer"])
def test_an_unknown_name_in_switchboard_allow_local_is_a_settings_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ALLOW_LOCAL", value)

    with pytest.raises(ValidationError, match="unknown local adapters") as error:
        Settings(data_dir=tmp_path)

    assert "known: ['analyzer'" in str(error.value)


def test_an_unknown_name_passed_explicitly_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"unknown local adapters \['everything'\]"):
        _settings(tmp_path, allow_local="everything")


def test_checking_a_name_that_is_no_local_adapter_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown local adapter 'cache'"):
        check_local(_settings(tmp_path), "cache")


def test_production_refuses_the_embedded_broker_then_the_embedded_database(
    tmp_path: Path,
) -> None:
    with pytest.raises(LocalAdapterRefused, match="local broker"):
        check_embedded(_settings(tmp_path, environment="production"))

    with pytest.raises(LocalAdapterRefused, match="local database"):
        check_embedded(
            _settings(
                tmp_path, environment="production", broker={"url": "redis://redis.internal:6379"}
            )
        )


def test_production_accepts_a_configured_or_allowed_broker_and_database(tmp_path: Path) -> None:
    configured = _settings(
        tmp_path,
        environment="production",
        broker={"url": "redis://redis.internal:6379"},
        database={"url": "postgresql://db.internal/switchboard"},
    )
    allowed = _settings(tmp_path, environment="production", allow_local="broker,database")

    check_embedded(configured)
    check_embedded(allowed)
    check_embedded(_settings(tmp_path, environment="development"))
    assert configured.broker.url is not None
    assert allowed.broker.url is None


# --- Adapters in production --------------------------------------------------------------


def _production_with_openai(
    tmp_path: Path, openai_standin: OpenAIStandIn, **fields: Any
) -> Settings:
    return _settings(
        tmp_path,
        environment="production",
        openai={
            "api_key": openai_standin.api_key,
            "base_url": openai_standin.base_url,
            "max_retries": 0,
            "timeout_s": 1.0,
        },
        **fields,
    )


def test_production_with_openai_but_no_vector_database_refuses_the_vectors(
    tmp_path: Path, sqlite_engine: sa.Engine, openai_standin: OpenAIStandIn
) -> None:
    adapters = Adapters(
        _production_with_openai(tmp_path, openai_standin),
        engine=sqlite_engine,
        redis_url=UNREACHABLE_REDIS,
    )
    try:
        analyzer = adapters.analyzer()
        embedder = adapters.embedder()
        with pytest.raises(LocalAdapterRefused, match="SWITCHBOARD_ALLOW_LOCAL=vectors"):
            adapters.vectors()
        with pytest.raises(LocalAdapterRefused, match="SWITCHBOARD_ALLOW_LOCAL=transcripts"):
            adapters.transcripts()

        assert isinstance(analyzer, OpenAIAnalyzer)
        assert isinstance(embedder, OpenAIEmbedder)
        analyzer.ping()  # the real client, against the stand-in
        assert [r.path for r in openai_standin.requests] == ["/v1/models/gpt-4o-mini"]
        assert adapters.labels == {
            "analyzer": "openai:gpt-4o-mini",
            "embedder": "openai:text-embedding-3-small",
        }
        assert adapters.local == []
    finally:
        adapters.close()


def test_production_runs_the_local_vectors_when_allowed_and_says_so(
    tmp_path: Path, sqlite_engine: sa.Engine, openai_standin: OpenAIStandIn
) -> None:
    adapters = Adapters(
        _production_with_openai(tmp_path, openai_standin, allow_local="vectors"),
        engine=sqlite_engine,
        redis_url=UNREACHABLE_REDIS,
    )
    try:
        vectors = adapters.vectors()

        assert isinstance(vectors, SqlVectorIndex)
        assert adapters.labels == {"vectors": "local-sql"}
        assert adapters.local == ["vectors"]
    finally:
        adapters.close()


def test_production_without_openai_refuses_the_local_analyzer_and_embedder(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    adapters = Adapters(
        _settings(tmp_path, environment="production", qdrant={"url": ":memory:"}),
        engine=sqlite_engine,
        redis_url=UNREACHABLE_REDIS,
    )
    try:
        with pytest.raises(LocalAdapterRefused, match="SWITCHBOARD_OPENAI__API_KEY"):
            adapters.analyzer()
        with pytest.raises(LocalAdapterRefused, match="SWITCHBOARD_ALLOW_LOCAL=embedder"):
            adapters.embedder()
        assert adapters.labels == {}
    finally:
        adapters.close()
