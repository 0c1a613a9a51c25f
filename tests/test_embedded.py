from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.embedded import EmbeddedValkey, ensure_server, resolve_broker_url, running_server
from infra.settings import load_settings


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def test_embedded_valkey_records_its_pid_port_and_url(embedded: EmbeddedValkey) -> None:
    record = json.loads((embedded.data_dir / "valkey.json").read_text())
    assert record["url"] == embedded.url == f"redis://127.0.0.1:{record['port']}"
    client = _client(record["url"])
    try:
        assert client.info("server")["process_id"] == record["pid"]
    finally:
        client.close()


def test_embedded_valkey_writes_an_append_only_file(embedded: EmbeddedValkey) -> None:
    client = _client(embedded.url)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        client.set("k", "v")
    finally:
        client.close()
    aof = embedded.data_dir / "valkey" / "appendonlydir"
    assert aof.is_dir()
    assert any(p.suffix == ".aof" or ".aof." in p.name for p in aof.iterdir())


def test_a_second_resolve_reuses_the_recorded_server(embedded: EmbeddedValkey) -> None:
    settings = load_settings(data_dir=embedded.data_dir)
    assert resolve_broker_url(settings) == embedded.url
    url, started = ensure_server(embedded.data_dir)
    assert (url, started) == (embedded.url, None)


def test_data_survives_a_restart_through_the_append_only_file(tmp_path: Path) -> None:
    first = EmbeddedValkey(tmp_path)
    first.start()
    client = _client(first.url)
    client.rpush("switchboard:calls.analyze", "m1")
    client.close()
    first.stop()
    second = EmbeddedValkey(tmp_path)
    second.start()
    try:
        client = _client(second.url)
        assert client.lrange("switchboard:calls.analyze", 0, -1) == [b"m1"]
        client.close()
    finally:
        second.stop()


def test_stop_removes_the_record_and_the_server_stops_answering(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path)
    server.start()
    assert running_server(tmp_path) is not None
    server.stop()
    assert not (tmp_path / "valkey.json").exists()
    assert running_server(tmp_path) is None
    server.stop()  # idempotent


def test_a_stale_record_is_replaced_by_a_new_server(tmp_path: Path) -> None:
    (tmp_path / "valkey.json").write_text(
        json.dumps({"pid": 999_999_999, "port": 1, "url": "redis://127.0.0.1:1"})
    )
    url, started = ensure_server(tmp_path)
    try:
        assert started is not None
        assert url != "redis://127.0.0.1:1"
        assert running_server(tmp_path) is not None
    finally:
        assert started is not None
        started.stop()


def test_a_configured_broker_url_wins_over_the_embedded_server(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, broker={"url": "redis://example:6379/0"})
    assert resolve_broker_url(settings) == "redis://example:6379/0"
    assert not (tmp_path / "valkey.json").exists()
