from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from actors.steps import record_health_check
from contracts import HealthAnswer
from contracts.errors import PermanentError, TransientError
from tests.builders import CONVERSATION_ID, TENANT_ID, make_health_answers, make_health_check_job
from tests.fakes import InMemoryCallStore, InMemoryCheckpoints


def test_the_answers_are_saved_and_the_checkpoint_deleted() -> None:
    checkpoints = InMemoryCheckpoints()
    checkpoints.put(CONVERSATION_ID, make_health_answers())
    health = InMemoryCallStore()

    emitted = record_health_check.run(
        make_health_check_job(), checkpoints=checkpoints, health=health
    )

    assert emitted == []
    assert (
        list(health.health_answers[(TENANT_ID, CONVERSATION_ID)].values()) == make_health_answers()
    )
    assert list(health.health_answers) == [(TENANT_ID, CONVERSATION_ID)]
    assert checkpoints.threads == {}
    assert checkpoints.deleted == [CONVERSATION_ID]


def test_the_thread_id_names_the_checkpoint_and_the_conversation_keys_the_answers() -> None:
    checkpoints = InMemoryCheckpoints()
    checkpoints.put("thread-77", make_health_answers())
    checkpoints.put(CONVERSATION_ID, [HealthAnswer(question="wrong", answer="thread")])
    health = InMemoryCallStore()

    record_health_check.run(
        make_health_check_job(thread_id="thread-77"), checkpoints=checkpoints, health=health
    )

    assert sorted(health.health_answers[(TENANT_ID, CONVERSATION_ID)]) == sorted(
        a.question for a in make_health_answers()
    )
    assert list(checkpoints.threads) == [CONVERSATION_ID]


def test_a_replay_after_the_checkpoint_is_gone_is_a_no_op() -> None:
    checkpoints = InMemoryCheckpoints()
    checkpoints.put(CONVERSATION_ID, make_health_answers())
    health = InMemoryCallStore()
    job = make_health_check_job()
    record_health_check.run(job, checkpoints=checkpoints, health=health)
    saved = dict(health.health_answers[(TENANT_ID, CONVERSATION_ID)])

    assert record_health_check.run(job, checkpoints=checkpoints, health=health) == []

    assert health.health_answers[(TENANT_ID, CONVERSATION_ID)] == saved
    assert checkpoints.deleted == [CONVERSATION_ID]


def test_a_missing_checkpoint_without_saved_answers_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="no checkpoint state for thread conv_0001"):
        record_health_check.run(
            make_health_check_job(), checkpoints=InMemoryCheckpoints(), health=InMemoryCallStore()
        )


@dataclass
class _Journal:
    entries: list[str] = field(default_factory=list)


class _RecordingHealth(InMemoryCallStore):
    def __init__(self, journal: _Journal, *, fail_saves: int = 0) -> None:
        super().__init__()
        self.journal = journal
        self.fail_saves = fail_saves

    def save_health_answers(
        self, *, tenant_id: str, conversation_id: str, answers: Sequence[HealthAnswer]
    ) -> None:
        self.journal.entries.append(f"save {conversation_id}")
        if self.fail_saves:
            self.fail_saves -= 1
            raise TransientError("database unreachable")
        super().save_health_answers(
            tenant_id=tenant_id, conversation_id=conversation_id, answers=answers
        )


class _RecordingCheckpoints(InMemoryCheckpoints):
    def __init__(self, journal: _Journal, *, fail_deletes: int = 0) -> None:
        super().__init__()
        self.journal = journal
        self.fail_deletes = fail_deletes

    def delete(self, thread_id: str) -> None:
        self.journal.entries.append(f"delete {thread_id}")
        if self.fail_deletes:
            self.fail_deletes -= 1
            raise TransientError("checkpoint store unreachable")
        super().delete(thread_id)


def test_the_answers_are_saved_before_the_checkpoint_is_deleted() -> None:
    journal = _Journal()
    checkpoints = _RecordingCheckpoints(journal)
    checkpoints.put("thread-1", make_health_answers())

    record_health_check.run(
        make_health_check_job(thread_id="thread-1"),
        checkpoints=checkpoints,
        health=_RecordingHealth(journal),
    )

    assert journal.entries == [f"save {CONVERSATION_ID}", "delete thread-1"]


def test_a_failed_delete_keeps_the_saved_answers_and_the_retry_completes() -> None:
    journal = _Journal()
    checkpoints = _RecordingCheckpoints(journal, fail_deletes=1)
    checkpoints.put(CONVERSATION_ID, make_health_answers())
    health = _RecordingHealth(journal)
    job = make_health_check_job()

    with pytest.raises(TransientError):
        record_health_check.run(job, checkpoints=checkpoints, health=health)
    assert health.has_health_answers(TENANT_ID, CONVERSATION_ID)
    assert CONVERSATION_ID in checkpoints.threads

    record_health_check.run(job, checkpoints=checkpoints, health=health)

    assert checkpoints.threads == {}
    assert len(health.health_answers[(TENANT_ID, CONVERSATION_ID)]) == len(make_health_answers())
    assert journal.entries == [
        f"save {CONVERSATION_ID}",
        f"delete {CONVERSATION_ID}",
        f"save {CONVERSATION_ID}",
        f"delete {CONVERSATION_ID}",
    ]


def test_a_failed_save_leaves_the_checkpoint_in_place() -> None:
    journal = _Journal()
    checkpoints = _RecordingCheckpoints(journal)
    checkpoints.put(CONVERSATION_ID, make_health_answers())
    health = _RecordingHealth(journal, fail_saves=1)

    with pytest.raises(TransientError):
        record_health_check.run(make_health_check_job(), checkpoints=checkpoints, health=health)

    assert checkpoints.threads[CONVERSATION_ID] == make_health_answers()
    assert journal.entries == [f"save {CONVERSATION_ID}"]
    assert not health.has_health_answers(TENANT_ID, CONVERSATION_ID)
