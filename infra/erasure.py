"""Forgetting one call or one user on request, everywhere Switchboard keeps them.

``switchboard forget`` and the admin API's ``DELETE`` routes call ``Eraser``:

- a call (tenant, conversation id): its vectors in the vector index, its rows in the
  SQL store (``infra.store.erasure``: jobs with the webhook's transcript, step rows,
  call log, health answers, callback, callback calls and their status events, intake
  rejections of the conversation id), and its dead letters in the broker;
- a user: every call of their tenant from or to their number, as above; their daily
  calls and those calls' status events; their dead letters; and their row, last, so
  that a forget cut short can be run again and find everything. When another user of
  the tenant has the same number (a shared line), nothing tells whose its calls are:
  they are left, and the erasure says so (``left``) with the command for each.

A call still being processed is not forgotten (its pipeline would write its rows
again): it is reported as kept, and a second run after it finished completes the job.
Dead letters are purged through the dead-letter desk, each audited like a ``dlq
purge``; when the broker cannot be read they are reported as kept too. Each forget is
written to the audit log (action ``forget``) with what it deleted, what it kept and
why, and so is one that failed.

Idempotent: forgetting again deletes nothing and says that nothing was left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contracts.errors import SwitchboardError, TransientError
from infra.bus.dead_letters import DeadLetter, DeadLetters
from infra.call_vectors import VectorEraser, delete_call_vectors
from infra.dlq import DeadLetterDesk, options_of
from infra.store.audit import SqlAudit
from infra.store.erasure import CallKey, SqlErasure, Tally, described


@dataclass
class Erasure:
    """What a forget did.

    Attributes:
        subject: What was forgotten (``call acme/conv_1``, ``user usr_1``).
        deleted: Rows (and vectors, dead letters) deleted, per label.
        calls: The calls erased (for a user: those from or to their number).
        kept: What could not be deleted now, and why (run again later).
        left: What was left on purpose, and why (running again leaves it too).
    """

    subject: str
    deleted: Tally = field(default_factory=Counter)
    calls: list[CallKey] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether nothing was kept back."""
        return not self.kept

    @property
    def outcome(self) -> str:
        """``deleted``, ``nothing left`` or ``partial``, as the audit log and the API say."""
        if self.kept:
            return "partial"
        return "deleted" if self.deleted.total() else "nothing left"

    def went(self) -> str:
        """What was deleted, label by label (empty when nothing was)."""
        return described(self.deleted)

    def summary(self) -> str:
        """One line: what went, and what was kept."""
        went = self.went()
        text = f"{self.outcome}: {went}" if went else self.outcome
        return (
            text
            + "".join(f"; kept {why}" for why in self.kept)
            + "".join(f"; left {why}" for why in self.left)
        )


Belongs = Callable[[DeadLetter], bool]
"""Whether a dead letter is about what is being forgotten."""


class DeadLetterBin(Protocol):
    """Purges the dead letters that belong to what is forgotten, auditing each."""

    def purge_matching(self, belongs: Belongs, *, actor: str, reason: str) -> int:
        """Purge every dead letter ``belongs`` accepts; return how many went.

        Raises:
            TransientError: The broker could not be read.
        """
        ...


class DeskBin:
    """``DeadLetterBin`` on the broker's dead letters, through the dead-letter desk.

    Reads every dead letter of every queue, a page at a time: an erasure that missed
    the older ones would not be one.
    """

    def __init__(self, letters: DeadLetters, desk: DeadLetterDesk) -> None:
        self._letters = letters
        self._desk = desk

    def purge_matching(self, belongs: Belongs, *, actor: str, reason: str) -> int:
        """Purge every dead letter ``belongs`` accepts; return how many went."""
        purged = 0
        for letter in self._letters.newest():
            if belongs(letter):
                outcome = self._desk.purge_letter(
                    letter.message_id, letter, actor=actor, reason=reason
                )
                purged += outcome.kind == "purged"
        return purged


def _field(letter: DeadLetter, name: str) -> object:
    payload = letter.payload
    return options_of(letter).get(name) or (
        payload.get(name) if isinstance(payload, dict) else None
    )


def letter_of_calls(calls: Sequence[CallKey]) -> Belongs:
    """Dead letters of these calls: their tenant, and their conversation as correlation."""
    keys = set(calls)

    def belongs(letter: DeadLetter) -> bool:
        tenant, payload = _field(letter, "tenant_id"), letter.payload
        conversation = payload.get("conversation_id") if isinstance(payload, dict) else None
        return any(
            CallKey(str(tenant), str(candidate)) in keys
            for candidate in (options_of(letter).get("correlation_id"), conversation)
            if candidate is not None
        )

    return belongs


def letter_of_user(user_id: str, calls: Sequence[CallKey]) -> Belongs:
    """Dead letters naming the user (their daily calls), or of their calls."""
    of_calls = letter_of_calls(calls)

    def belongs(letter: DeadLetter) -> bool:
        payload = letter.payload
        named = isinstance(payload, dict) and payload.get("user_id") == user_id
        return named or of_calls(letter)

    return belongs


class Eraser:
    """Forgets calls and users (see the module docstring).

    Args:
        store: The SQL store's erasure.
        vectors: The vector index.
        audit: The audit log.
        letters: The broker's dead letters; None when there is no broker to read.
    """

    def __init__(
        self,
        store: SqlErasure,
        vectors: VectorEraser,
        audit: SqlAudit,
        letters: DeadLetterBin | None,
    ) -> None:
        self._store = store
        self._vectors = vectors
        self._audit = audit
        self._letters = letters

    def forget_call(self, key: CallKey, *, tenant_name: str, actor: str, reason: str) -> Erasure:
        """Forget one call of a tenant.

        Raises:
            TransientError: The database or the vector index is unavailable (audited;
                nothing of the call's rows went if the vector index failed).
        """
        erasure = Erasure(f"call {tenant_name}/{key.conversation_id}")
        return self._audited(erasure, "", actor, reason, lambda: self._calls(erasure, [key]))

    def forget_user(self, user_id: str, *, actor: str, reason: str) -> Erasure:
        """Forget one user, and every call of their tenant from or to their number.

        Raises:
            TransientError: The database or the vector index is unavailable (audited).
        """
        erasure = Erasure(f"user {user_id}")
        return self._audited(erasure, user_id, actor, reason, lambda: self._user(erasure, user_id))

    def _audited(
        self, erasure: Erasure, user_id: str, actor: str, reason: str, work: Callable[[], None]
    ) -> Erasure:
        try:
            work()
            self._dead_letters(erasure, user_id, actor=actor, reason=reason)
            erasure.deleted = +erasure.deleted
        except SwitchboardError as error:
            went = erasure.went()
            self._record(
                erasure, actor, reason, f"failed: {error}" + (f" (after {went})" if went else "")
            )
            raise
        self._record(erasure, actor, reason, erasure.summary())
        return erasure

    def _record(self, erasure: Erasure, actor: str, reason: str, outcome: str) -> None:
        self._audit.record(
            actor=actor, action="forget", target=erasure.subject, reason=reason, outcome=outcome
        )

    def _calls(self, erasure: Erasure, keys: Sequence[CallKey]) -> None:
        idle: list[CallKey] = []
        for key in keys:
            busy = self._store.jobs_in_flight(key)
            if busy:
                erasure.kept.append(
                    f"call {key.conversation_id}: still being processed (job {', '.join(busy)})"
                )
            else:
                idle.append(key)
        # Vectors first: their ids come from the key alone, so a failure here leaves
        # the rows, and running again finds everything.
        erasure.deleted["vectors"] += delete_call_vectors(self._vectors, idle)
        for key in idle:
            erasure.deleted += self._store.delete_call(key)
        erasure.calls += idle

    def _user(self, erasure: Erasure, user_id: str) -> None:
        user = self._store.user(user_id)
        if user is None:
            return
        calls = self._store.calls_of_number(user.tenant_id, user.phone)
        sharing = self._store.others_with_number(user) if calls else []
        if sharing:
            # Not the number itself: the audit log keeps this line after the user is gone.
            erasure.left.append(
                f"{len(calls)} call(s) from or to their number, which is also user "
                f"{', '.join(sharing)}'s: {', '.join(key.conversation_id for key in calls)}"
                " (forget each that is theirs with `switchboard forget call CONVERSATION_ID "
                f"--tenant {user.tenant_name} --reason …`)"
            )
            calls = []
        self._calls(erasure, calls)
        if not erasure.kept:
            # Last: the row holds the number that finds the user's calls.
            erasure.deleted += self._store.delete_user(user_id)

    def _dead_letters(self, erasure: Erasure, user_id: str, *, actor: str, reason: str) -> None:
        if not erasure.calls and not user_id:
            return
        if self._letters is None:
            erasure.kept.append("dead letters: no broker to read them from")
            return
        belongs = (
            letter_of_user(user_id, erasure.calls) if user_id else letter_of_calls(erasure.calls)
        )
        try:
            purged = self._letters.purge_matching(belongs, actor=actor, reason=reason)
        except TransientError as error:
            erasure.kept.append(f"dead letters: {error}")
            return
        erasure.deleted["dead letters"] += purged
