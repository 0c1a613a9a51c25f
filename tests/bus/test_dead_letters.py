from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import dramatiq

from contracts.errors import PermanentError
from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.bus.failures import FailureRecorder
from infra.bus.publisher import BrokerPublisher
from infra.bus.publishing import Envelope
from infra.bus.queues import dead_key
from tests.bus.support import running_worker, wait_until


def _reject(payload: dict[str, Any]) -> None:
    raise PermanentError(f"bad payload {payload['n']}")


def _dead_lettering_broker(
    make_broker: Callable[..., SwitchboardBroker], *, record: bool, queues: tuple[str, ...]
) -> SwitchboardBroker:
    recorder = FailureRecorder("unused")
    broker = make_broker(recorder) if record else make_broker()
    recorder.namespace = broker.namespace
    for queue in queues:
        dramatiq.actor(
            broker=broker, actor_name=f"reject_{queue}", queue_name=queue, throws=(PermanentError,)
        )(_reject)
    return broker


def _has_dead(broker: SwitchboardBroker, queue: str, count: int) -> bool:
    return bool(broker.client.zcard(dead_key(broker.namespace, queue)) == count)


def _publish_and_kill(broker: SwitchboardBroker, *items: tuple[str, int]) -> list[str]:
    publisher = BrokerPublisher(broker)
    ids = []
    for queue, n in items:
        envelope = Envelope(queue, f"reject_{queue}", {"n": n}, {"job_id": f"j{n}"})
        ids.append(publisher.publish(envelope))
        time.sleep(0.01)  # distinct dead-lettering times, in publishing order
    with running_worker(broker, threads=1):
        for queue in {q for q, _ in items}:
            count = sum(1 for q, _ in items if q == queue)
            wait_until(partial(_has_dead, broker, queue, count))
    return ids


def test_a_dead_letter_is_listed_with_its_payload_time_and_failure(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = _dead_lettering_broker(make_broker, record=True, queues=("q.a",))
    before = datetime.now(UTC)
    [message_id] = _publish_and_kill(broker, ("q.a", 1))

    [letter] = DeadLetters(broker.client, broker.namespace).list()

    assert letter.message_id == message_id
    assert letter.queue == "q.a"
    assert letter.actor == "reject_q.a"
    assert letter.payload == {"n": 1}
    assert letter.message["options"]["job_id"] == "j1"
    assert before - timedelta(seconds=1) <= letter.dead_at <= datetime.now(UTC)
    assert letter.failure is not None
    assert letter.failure.exception_message == "bad payload 1"
    assert letter.failure.attempts == 1


def test_dead_letters_are_listed_newest_first_across_queues_and_limited(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = _dead_lettering_broker(make_broker, record=True, queues=("q.a", "q.b"))
    ids = _publish_and_kill(broker, ("q.a", 1), ("q.b", 2), ("q.a", 3))
    letters = DeadLetters(broker.client, broker.namespace)

    everything = letters.list()
    only_a = letters.list("q.a")
    newest = letters.list(limit=1)

    assert sorted(letter.message_id for letter in everything) == sorted(ids)
    assert [letter.dead_at for letter in everything] == sorted(
        (letter.dead_at for letter in everything), reverse=True
    )
    assert {letter.queue for letter in only_a} == {"q.a"}
    assert len(only_a) == 2
    assert newest == everything[:1]
    assert letters.queues() == ["q.a", "q.b"]


def test_get_finds_a_dead_letter_by_message_id_with_or_without_a_failure_record(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    recorded = _dead_lettering_broker(make_broker, record=True, queues=("q.a",))
    [with_record] = _publish_and_kill(recorded, ("q.a", 1))
    unrecorded = _dead_lettering_broker(make_broker, record=False, queues=("q.b",))
    [without_record] = _publish_and_kill(unrecorded, ("q.b", 2))
    letters = DeadLetters(recorded.client, recorded.namespace)

    found = letters.get(with_record)
    found_by_scan = letters.get(without_record)

    assert found is not None
    assert found.failure is not None
    assert found.payload == {"n": 1}
    assert found_by_scan is not None
    assert found_by_scan.failure is None
    assert found_by_scan.payload == {"n": 2}
    assert letters.get(found.redis_message_id) == found
    assert letters.get("no-such-message") is None


def _accepting_broker(
    make_broker: Callable[..., SwitchboardBroker], queue: str, seen: list[dict[str, Any]]
) -> SwitchboardBroker:
    """A broker whose actor (same name as the rejecting one) now accepts the message."""
    broker = make_broker()

    def accept(payload: dict[str, Any]) -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        assert message is not None
        seen.append({"payload": payload, "options": dict(message.options)})

    dramatiq.actor(broker=broker, actor_name=f"reject_{queue}", queue_name=queue)(accept)
    return broker


def test_a_replayed_dead_letter_runs_again_with_its_identity_and_a_fresh_retry_budget(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = _dead_lettering_broker(make_broker, record=True, queues=("q.a",))
    [message_id] = _publish_and_kill(broker, ("q.a", 1))
    letters = DeadLetters(broker.client, broker.namespace)
    [letter] = letters.list()

    assert letters.replay(letter) is True

    assert letters.list() == []
    assert letters.replay(letter) is False  # a second replay finds nothing: enqueued once
    seen: list[dict[str, Any]] = []
    with running_worker(_accepting_broker(make_broker, "q.a", seen), threads=1):
        wait_until(lambda: len(seen) == 1)
    assert seen[0]["payload"] == {"n": 1}
    assert seen[0]["options"]["job_id"] == "j1"
    assert seen[0]["options"].get("retries", 0) == 0
    assert broker.client.hlen(f"{broker.namespace}:q.a.XQ.failures") == 0
    assert message_id == letter.message_id


def test_an_edited_payload_is_kept_and_replayed(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = _dead_lettering_broker(make_broker, record=True, queues=("q.a",))
    _publish_and_kill(broker, ("q.a", 1))
    letters = DeadLetters(broker.client, broker.namespace)
    [letter] = letters.list()

    edited = letters.replace_payload(letter, {"n": 42})

    assert edited is not None
    assert edited.payload == {"n": 42}
    [stored] = letters.list()
    assert stored.payload == {"n": 42}
    assert stored.failure is not None  # the reason stays with the edited letter
    assert letters.replay(stored)
    seen: list[dict[str, Any]] = []
    with running_worker(_accepting_broker(make_broker, "q.a", seen), threads=1):
        wait_until(lambda: len(seen) == 1)
    assert seen[0]["payload"] == {"n": 42}


def test_a_purged_dead_letter_is_gone_with_its_failure_record(
    make_broker: Callable[..., SwitchboardBroker],
) -> None:
    broker = _dead_lettering_broker(make_broker, record=True, queues=("q.a",))
    _publish_and_kill(broker, ("q.a", 1), ("q.a", 2))
    letters = DeadLetters(broker.client, broker.namespace)
    first, second = letters.list()

    assert letters.purge(first) is True

    assert [letter.message_id for letter in letters.list()] == [second.message_id]
    assert letters.purge(first) is False
    assert letters.replace_payload(first, {"n": 0}) is None
    assert broker.client.llen(f"{broker.namespace}:q.a") == 0
