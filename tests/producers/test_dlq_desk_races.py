"""The dead-letter desk's replay against the two races around it.

A replay puts the message back on its queue and takes its job out of ``failed``: two
writes to two systems. Whatever a worker or another operator does between them, the
job must end where its message is.
"""

from __future__ import annotations

from typing import Any

from contracts import Contract
from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetter, DeadLetters
from infra.dlq import DeadLetterDesk
from infra.store.audit import SqlAudit
from infra.store.records import MessageRef
from tests.builders import make_post_call_job
from tests.producers.conftest import Store, TenantFixture, failed_job


def _job(acme: TenantFixture, name: str) -> Contract:
    return make_post_call_job(tenant_id=acme.tenant.id, conversation_id=name, job_id=f"job-{name}")


def _status(store: Store, job_id: str) -> str:
    view = store.jobs.job_view(job_id, tenant_id=None)
    assert view is not None
    return view.status


class FailsAgainAtOnce(DeadLetters):
    """A broker whose worker fails a replayed message before the replay call returns."""

    def __init__(self, broker: SwitchboardBroker, store: Store, contract: Contract) -> None:
        super().__init__(broker.client, broker.namespace)
        self._store = store
        self._contract = contract

    def replay(self, letter: DeadLetter, payload: Any | None = None) -> bool:
        replayed = super().replay(letter, payload)
        message = MessageRef(self._contract.idempotency_key, self._contract.route.actor, 0)
        self._store.progress.message_started(self._contract.job_id, message)
        self._store.progress.message_failed(
            self._contract.job_id,
            message,
            error="PermanentError: refused again",
            dead_letter_id=letter.message_id,
        )
        return replayed


def test_a_replay_that_fails_again_at_once_leaves_its_job_failed(
    store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    contract = _job(acme, "conv_again")
    message_id = failed_job(store, dead_broker, contract)
    letters = FailsAgainAtOnce(dead_broker, store, contract)
    desk = DeadLetterDesk(letters, store.progress, SqlAudit(store.engine))

    outcome = desk.replay(message_id, actor="ana", reason="try again")

    assert outcome.kind == "replayed"
    view = store.jobs.job_view(contract.job_id, tenant_id=None)
    assert view is not None
    assert view.status == "failed"
    assert view.failure is not None
    assert view.failure.error == "PermanentError: refused again"


def test_a_replay_of_a_letter_gone_meanwhile_leaves_its_job_failed(
    store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    contract = _job(acme, "conv_gone")
    message_id = failed_job(store, dead_broker, contract)
    letters = DeadLetters(dead_broker.client, dead_broker.namespace)
    desk = DeadLetterDesk(letters, store.progress, SqlAudit(store.engine))
    letter = letters.get(message_id)
    assert letter is not None
    assert letters.purge(letter)  # another operator purged it after we read it

    outcome = desk.replay_letter(message_id, letter, actor="ana", reason="late")

    assert outcome.kind == "gone"
    assert _status(store, contract.job_id) == "failed"
    view = store.jobs.job_view(contract.job_id, tenant_id=None)
    assert view is not None
    assert view.failure is not None
    assert view.failure.dead_letter_id == message_id
