from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from infra.sockets import free_port
from infra.store.engine import create_engine
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.tenants import SqlTenantDirectory
from tests.builders import make_inbox_entry, make_post_call_job

pytestmark = pytest.mark.redis


def _env(tmp_path: Path, redis_url: str, database_url: str, probe_port: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT=str(probe_port),
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_BROKER__URL=redis_url,
        SWITCHBOARD_BROKER__NAMESPACE="sched-test",
        SWITCHBOARD_DATABASE__URL=database_url,
        SWITCHBOARD_SCHEDULER__RELAY_INTERVAL_S="0.3",
        SWITCHBOARD_SCHEDULER__RELAY_MIN_AGE_S="0",
    )
    return env


def test_the_scheduler_process_relays_a_pending_job_and_releases_its_lease_on_sigterm(
    tmp_path: Path, redis_url: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'sched.db'}"
    upgrade(database_url)
    engine = create_engine(database_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    log = (tmp_path / "scheduler.log").open("wb")
    process = None
    try:
        tenant, _ = SqlTenantDirectory(engine).add_tenant("acme")
        ledger = SqlJobLedger(engine)
        job = make_post_call_job(tenant_id=tenant.id, job_id="job_1", conversation_id="conv_1")
        ledger.accept(make_inbox_entry(job))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            env=_env(tmp_path, redis_url, database_url, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while ledger.pending(min_age_s=0, limit=10) and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        assert ledger.pending(min_age_s=0, limit=10) == []
        assert client.hlen("sched-test:calls.transcript.msgs") == 1
        assert client.exists("sched-test:scheduler:leader") == 1
        probes = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{probes}/healthz", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(f"{probes}/readyz", timeout=5)
        assert (ready.status_code, ready.json()["checks"]["broker"]["ok"]) == (200, True)
        metrics = httpx.get(f"{probes}/metrics", timeout=5).text
        assert "switchboard_jobs_redriven_total" in metrics
        # Read at the scrape: the relayed message waits in its queue, the inbox is empty.
        assert (
            'switchboard_queue_ready_messages{pipeline="post_call",queue="calls.transcript"} 1.0'
            in metrics
        )
        assert "switchboard_inbox_pending_jobs 0.0" in metrics
        assert "switchboard_scheduler_leader 1.0" in metrics
        assert 'switchboard_scheduler_ticks_total{tick="relay"}' in metrics

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, (tmp_path / "scheduler.log").read_text()
        assert client.exists("sched-test:scheduler:leader") == 0
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        log.close()
        client.close()
        engine.dispose()


def test_the_scheduler_refuses_an_unmigrated_database(tmp_path: Path, redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scheduler"],
        env=_env(tmp_path, redis_url, f"sqlite:///{tmp_path / 'empty.db'}"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "switchboard db upgrade" in done.stderr
