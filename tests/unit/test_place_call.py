"""Step ``place_call``: a call is placed at most once, whatever the provider answers."""

from __future__ import annotations

from datetime import date

import pytest

from actors.steps import place_call
from contracts import PlaceUserCallJobData
from contracts.errors import OutcomeUnknown, PermanentError, TransientError
from tests.fakes import FakeTelephony, InMemoryCallBook

CALL_ID = "call_1"


def _command() -> PlaceUserCallJobData:
    return PlaceUserCallJobData(
        job_id="job_tick",
        correlation_id=CALL_ID,
        tenant_id="tenant-acme",
        call_id=CALL_ID,
        phone="+14155550100",
        attempt=1,
        user_id="usr_1",
        local_date=date(2026, 12, 4),
    )


def _book(status: str = "queued") -> InMemoryCallBook:
    return InMemoryCallBook(statuses={CALL_ID: status})


def test_a_queued_call_is_placed_and_gets_the_providers_id() -> None:
    book, telephony = _book(), FakeTelephony()

    assert place_call.run(_command(), telephony=telephony, book=book) == []

    assert telephony.placed == [_command()]
    assert book.statuses[CALL_ID] == "placed"
    assert book.provider_ids[CALL_ID] == "prov-1"


def test_a_replayed_placement_calls_nobody() -> None:
    book, telephony = _book(), FakeTelephony()
    place_call.run(_command(), telephony=telephony, book=book)

    place_call.run(_command(), telephony=telephony, book=book)

    assert len(telephony.placed) == 1


@pytest.mark.parametrize("status", ["cancelled", "completed", "unknown", "missed"])
def test_a_call_that_is_not_queued_is_left_alone(status: str) -> None:
    book, telephony = _book(status), FakeTelephony()

    place_call.run(_command(), telephony=telephony, book=book)

    assert telephony.placed == []
    assert book.statuses[CALL_ID] == status


def test_a_delivery_that_died_mid_request_leaves_the_call_for_review() -> None:
    book, telephony = _book("placing"), FakeTelephony()

    place_call.run(_command(), telephony=telephony, book=book)

    assert telephony.placed == []
    assert book.statuses[CALL_ID] == "unknown"


def test_a_request_that_never_reached_the_provider_is_requeued_and_retried() -> None:
    book = _book()
    telephony = FakeTelephony(failure=TransientError("connection refused"))

    with pytest.raises(TransientError):
        place_call.run(_command(), telephony=telephony, book=book)
    assert book.statuses[CALL_ID] == "queued"

    place_call.run(_command(), telephony=telephony, book=book)
    assert book.statuses[CALL_ID] == "placed"


def test_a_refused_call_fails_and_goes_to_the_dead_letters() -> None:
    book = _book()
    telephony = FakeTelephony(failure=PermanentError("404 agent does not exist"))

    with pytest.raises(PermanentError):
        place_call.run(_command(), telephony=telephony, book=book)

    assert book.statuses[CALL_ID] == "failed"
    assert book.errors[CALL_ID] == "404 agent does not exist"


def test_an_unanswered_request_is_recorded_unknown_and_not_retried() -> None:
    book = _book()
    telephony = FakeTelephony(failure=OutcomeUnknown("read timeout after sending"))

    assert place_call.run(_command(), telephony=telephony, book=book) == []

    assert book.statuses[CALL_ID] == "unknown"
    place_call.run(_command(), telephony=telephony, book=book)
    assert telephony.placed == []
