"""Reading every dead letter a page at a time: order, ties, and acting while reading.

Dead letters are written as Dramatiq's Redis broker keeps them (a ``.XQ`` zset scored by
milliseconds and a ``.XQ.msgs`` hash) with a failure record each, so thousands of them
take a moment to set up rather than a worker's run.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters, LetterKey
from tests.bus.support import START_MS, bury


@pytest.fixture
def broker(make_broker: Callable[..., SwitchboardBroker]) -> SwitchboardBroker:
    return make_broker()


def test_every_dead_letter_is_read_newest_first_across_queues_and_pages(
    broker: SwitchboardBroker,
) -> None:
    a = bury(broker, "q.a", [START_MS + 2 * n for n in range(250)])
    b = bury(broker, "q.b", [START_MS + 2 * n + 1 for n in range(250)])
    # 120 that died in the same millisecond: ties across a page's end.
    tied = bury(broker, "q.a", [START_MS + 1_000] * 120)
    letters = DeadLetters(broker.client, broker.namespace)

    read = list(letters.newest(page=50))

    assert len(read) == 620
    assert {letter.message_id for letter in read} == set(a + b + tied)
    assert [letter.dead_at for letter in read] == sorted(
        (letter.dead_at for letter in read), reverse=True
    )
    assert {letter.message_id for letter in read[:120]} == set(tied)
    assert read[120].queue == "q.b"  # the newest of the rest: 499 ms after the start
    assert all(letter.failure is not None for letter in read)
    assert letters.count() == 620
    assert letters.count("q.b") == 250
    assert [letter.message_id for letter in letters.list("q.b", limit=3)] == b[::-1][:3]


def test_letters_purged_while_reading_move_nothing_along_and_new_ones_are_not_read(
    broker: SwitchboardBroker,
) -> None:
    ids = bury(broker, "q.a", [START_MS + n // 3 for n in range(300)])  # three per ms
    letters = DeadLetters(broker.client, broker.namespace)

    seen = []
    for letter in letters.newest(page=40):
        seen.append(letter.message_id)
        assert letters.purge(letter)
        if len(seen) == 100:
            bury(broker, "q.a", [START_MS + 10_000])  # a replay that failed again

    assert sorted(seen) == sorted(ids)
    assert letters.count("q.a") == 1


def test_a_letter_is_read_again_by_its_key_until_it_is_gone(broker: SwitchboardBroker) -> None:
    bury(broker, "q.a", [START_MS])
    letters = DeadLetters(broker.client, broker.namespace)
    [letter] = letters.list()

    again = letters.load(letter.key)
    assert again == letter
    assert letters.purge(letter)
    assert letters.load(letter.key) is None
    assert letters.load(LetterKey("m", "q.none", "r")) is None
