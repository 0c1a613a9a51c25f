from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from typer.testing import CliRunner

from contracts import CONTRACTS
from contracts.errors import PermanentError
from infra.bus.broker import SwitchboardBroker, build_broker
from infra.bus.dead_letters import DeadLetters
from infra.bus.failures import FailureRecorder
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.cli.main import app
from infra.settings import BrokerSettings
from tests.bus.support import running_worker, wait_until

QUEUE = "calls.analyze"


@pytest.fixture
def broker(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SwitchboardBroker]:
    settings = BrokerSettings(namespace=f"sbcli-{uuid.uuid4().hex[:8]}", socket_timeout_s=2)
    monkeypatch.setenv("SWITCHBOARD_BROKER__URL", redis_url)
    monkeypatch.setenv("SWITCHBOARD_BROKER__NAMESPACE", settings.namespace)
    built = build_broker(settings, redis_url, middleware=[FailureRecorder(settings.namespace)])
    try:
        yield built
    finally:
        built.close()


def _dead_letter(broker: SwitchboardBroker) -> str:
    def analyze(payload: dict[str, Any]) -> None:
        raise PermanentError(f"model refused conversation {payload['conversation_id']}")

    dramatiq.actor(broker=broker, actor_name="analyze_call", queue_name=QUEUE, max_retries=0)(
        analyze
    )
    options = {"correlation_id": "conv_dead_1", "job_id": "job-1", "contract": "CallTranscribed"}
    envelope = Envelope(QUEUE, "analyze_call", {"conversation_id": "conv_dead_1"}, options)
    message_id = BrokerPublisher(broker).publish(envelope)
    letters = DeadLetters(broker.client, broker.namespace)
    with running_worker(broker):
        wait_until(lambda: letters.get(message_id) is not None, timeout_s=10)
    return message_id


def test_dead_letters_is_an_alias_of_dlq(broker: SwitchboardBroker) -> None:
    message_id = _dead_letter(broker)

    alias = CliRunner().invoke(app, ["dead-letters", "list"], env={"COLUMNS": "200"})
    dlq = CliRunner().invoke(app, ["dlq", "list"], env={"COLUMNS": "200"})

    assert alias.exit_code == 0, alias.output
    assert alias.stdout == dlq.stdout
    assert message_id in alias.stdout
    assert "PermanentError: model refused conversation conv_dead_1" in alias.stdout


def test_queues_counts_each_pipeline_queue_including_the_dead_letter(
    broker: SwitchboardBroker, redis_url: str
) -> None:
    _dead_letter(broker)
    # Published as a producer would, from a broker no worker listens on.
    producer = build_broker(BrokerSettings(namespace=broker.namespace), redis_url)
    try:
        BrokerPublisher(producer).publish(
            Envelope("calls.persist", "persist_call", {"conversation_id": "conv_2"}, {})
        )
    finally:
        producer.close()
    result = CliRunner().invoke(app, ["queues"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:7]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows["calls.analyze"] == ["0", "0", "0", "1", "-"], result.stdout
    # The persist message was just published: it has waited a fraction of a second.
    assert rows["calls.persist"][:4] == ["1", "0", "0", "0"], result.stdout
    assert rows["calls.persist"][4].endswith(" s"), result.stdout
    assert set(rows) == {c.route.queue for c in CONTRACTS}
