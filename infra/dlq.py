"""The dead-letter desk: finding, fixing, replaying and purging dead letters, audited.

``switchboard dlq`` and the admin API (``/api/admin/dead-letters``) both act through
``DeadLetterDesk``, so a change looks the same in the audit log whoever made it:

- a payload is validated against the contract its message names (the ``contract``
  option) before an edit is kept or a replay enqueued; an invalid one changes nothing;
- each ``replay``, ``purge`` and ``edit`` writes one audit entry with its outcome
  (``replayed``, ``purged``, ``gone``, ``kept``, ``unchanged``, ``rejected: …``,
  ``skipped: invalid payload: …``) and, for an edit, the payload's unified diff;
- a replay re-enqueues the message with its id and options (job id and idempotency
  key, so the step's effects stay single) and takes its job out of ``failed``.

Replaying or purging twice is harmless: the broker's scripts are atomic, so the second
call finds the dead letter gone (``kind == "gone"``). Every method raises
``TransientError`` when the broker or the store cannot be reached.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pydantic

from contracts import BY_NAME, CONTRACTS, Contract
from infra.bus.dead_letters import PAGE, DeadLetter, DeadLetters
from infra.store.audit import AuditEntry, SqlAudit
from infra.store.progress import SqlJobProgress

SCAN_LIMIT = 10_000
"""Most dead letters a request of the admin API or the console reads, newest first, to
filter: a request's time stays bounded. The CLI reads them all."""

QUEUES = sorted({contract.route.queue for contract in CONTRACTS})
"""The pipeline queues: the routes of the contracts."""

ACTORS = sorted({contract.route.actor for contract in CONTRACTS})
"""The pipeline actors: the routes of the contracts."""

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def options_of(letter: DeadLetter) -> dict[str, Any]:
    """The dead letter's message options (contract, job_id, idempotency_key …)."""
    options: dict[str, Any] = letter.message.get("options") or {}
    return options


def contract_of(letter: DeadLetter) -> type[Contract] | None:
    """The contract the dead letter's message names, if the code knows it."""
    return BY_NAME.get(str(options_of(letter).get("contract")))


IDENTITY = ("job_id", "tenant_id", "correlation_id", "schema_version")
"""Payload fields the message's options fix: the job, tenant and call it belongs to."""


def violations(letter: DeadLetter, payload: Any) -> list[str]:
    """Why ``payload`` is not a valid message of the letter's contract (empty if it is).

    Valid means the contract accepts it and its identity (``IDENTITY``) is still the
    message's: an edited ``tenant_id`` or ``job_id`` would replay the step into another
    tenant's data or complete another job. Each entry reads ``location: message``
    (``(payload)`` for the whole payload).
    """
    contract = contract_of(letter)
    if contract is None:
        return [f"unknown contract {options_of(letter).get('contract')!r}"]
    try:
        message = contract.model_validate(payload)
    except pydantic.ValidationError as error:
        return [
            f"{'.'.join(str(part) for part in problem['loc']) or '(payload)'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        ]
    options = options_of(letter)
    # As the contract reads it: a call's correlation id is its conversation id.
    derived = {"correlation_id": "conversation_id"} if "conversation_id" in payload else {}
    return [
        f"{derived.get(name, name)}: must stay {options[name]!r}, the message's own (purge "
        "it and send a new job for another)"
        for name in IDENTITY
        if name in options and getattr(message, name, None) != options[name]
    ]


def _new_unknown_fields(letter: DeadLetter, payload: Any) -> list[str]:
    """Fields an edit added that the contract does not have (a typo: ``thred_id``).

    The contract ignores a field it does not know, so a misspelt one would be kept and
    change nothing; fields the message already had (a newer producer's) may stay.
    """
    contract = contract_of(letter)
    if contract is None or not isinstance(payload, dict):
        return []
    before = letter.payload if isinstance(letter.payload, dict) else {}
    return [
        f"{name}: not a field of {contract.__name__}"
        for name in payload
        if name not in contract.model_fields and name not in before
    ]


def letter_document(letter: DeadLetter, *, full: bool) -> dict[str, Any]:
    """The dead letter as JSON: where, why, its job; ``full`` adds traceback and options."""
    options = options_of(letter)
    failure = letter.failure
    document: dict[str, Any] = {
        "id": letter.message_id,
        "queue": letter.queue,
        "actor": letter.actor,
        "contract": options.get("contract"),
        "dead_at": letter.dead_at.isoformat(),
        "job_id": options.get("job_id"),
        "tenant_id": options.get("tenant_id"),
        "attempts": failure.attempts if failure else None,
        "exception_type": failure.exception_type if failure else None,
        "exception_message": failure.exception_message if failure else None,
    }
    if full:
        document["traceback"] = failure.traceback if failure else None
        document["options"] = options
    document["payload"] = letter.payload
    return document


def entry_document(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "queue": entry.queue,
        "job_id": entry.job_id,
        "reason": entry.reason,
        "outcome": entry.outcome,
        "diff": entry.diff,
    }


def since_moment(value: str, now: datetime) -> datetime:
    """A ``since`` filter: an ISO time (UTC when it has no offset) or a duration ago.

    Raises:
        ValueError: ``value`` is neither (e.g. not ``30m``, ``2h``, ``1d``).
    """
    match = _DURATION.fullmatch(value.strip())
    if match:
        try:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError as error:  # further back than datetime goes (year 1)
            raise ValueError(f"{value.strip()} ago is before the year 1") from error
    moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Selection:
    """Which dead letters to read: by queue, actor, exception type, time, tenant and job.

    The queue is read from the broker; the other filters are applied to the dead letters
    as they are read, newest first, since the broker indexes dead letters by time only.
    """

    queue: str | None = None
    actor: str | None = None
    error: str | None = None
    since: datetime | None = None
    tenant_ids: frozenset[str] | None = None
    job_id: str | None = None

    @property
    def narrows(self) -> bool:
        """Whether a filter other than the queue applies."""
        filters = (self.actor, self.error, self.since, self.tenant_ids, self.job_id)
        return any(value is not None for value in filters)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` passes every filter."""
        failure = letter.failure
        return (
            (self.queue is None or letter.queue == self.queue)
            and (self.actor is None or letter.actor == self.actor)
            and (
                self.error is None
                or (failure is not None and failure.exception_type.lower() == self.error.lower())
            )
            and (self.since is None or letter.dead_at >= self.since)
            and (self.tenant_ids is None or options_of(letter).get("tenant_id") in self.tenant_ids)
            and (self.job_id is None or options_of(letter).get("job_id") == self.job_id)
        )

    def page(self, limit: int | None) -> int:
        """Dead letters to read per round for ``limit`` matches (None: all of them).

        A page; only ``limit`` when no filter but the queue applies, as then every
        letter read is one to show.
        """
        return PAGE if self.narrows or limit is None else min(limit, PAGE)

    def matching(self, read: Iterable[DeadLetter]) -> Iterator[DeadLetter]:
        """The dead letters of ``read`` that match, in its order."""
        return (letter for letter in read if self.matches(letter))

    def select(self, letters: DeadLetters, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters that match among the newest ``SCAN_LIMIT``."""
        read = letters.newest(self.queue, page=self.page(limit))
        return list(islice(self.matching(islice(read, SCAN_LIMIT)), limit))


@dataclass(frozen=True)
class Outcome:
    """What came of one desk call.

    Attributes:
        kind: ``replayed``, ``purged``, ``gone``, ``invalid`` (a replay skipped),
            ``kept``, ``unchanged`` or ``rejected`` (an edit).
        outcome: What the audit entry says.
        message: One line for a person.
        violations: Why the payload is invalid (``invalid`` and a rejected edit).
        job_id: The dead letter's job, if it names one.
        diff: An edit's unified diff of the payload (None when nothing differs).
    """

    kind: str
    outcome: str
    message: str
    violations: tuple[str, ...] = ()
    job_id: str | None = None
    diff: str | None = None


def pretty(payload: Any) -> str:
    """``payload`` as indented JSON, the text an edit is diffed on."""
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def payload_diff(before: str, after: str, message_id: str) -> str:
    """The unified diff of an edit, from the dead letter's text to the edited one."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{message_id} (dead letter)",
        tofile=f"{message_id} (edited)",
    )
    return "".join(lines)


def _job_id(letter: DeadLetter | None) -> str | None:
    job_id = options_of(letter).get("job_id") if letter else None
    return None if job_id is None else str(job_id)


def _error_of(letter: DeadLetter) -> str:
    failure = letter.failure
    if failure is None:
        return "dead-lettered"
    return f"{failure.exception_type}: {failure.exception_message}"


def _gone(message_id: str, job_id: str | None = None) -> Outcome:
    return Outcome("gone", "gone", f"gone: {message_id} is no longer a dead letter", job_id=job_id)


class DeadLetterDesk:
    """Replays, purges and edits dead letters, auditing each call.

    The ``*_letter`` methods act on a dead letter already read (a batch of the CLI);
    the others read it by id first.

    Args:
        letters: The broker's dead letters.
        progress: Takes a replayed message's job out of ``failed``.
        audit: Where every change is recorded.
    """

    def __init__(self, letters: DeadLetters, progress: SqlJobProgress, audit: SqlAudit) -> None:
        self._letters = letters
        self._progress = progress
        self._audit = audit

    def get(self, message_id: str) -> DeadLetter | None:
        """The dead letter with this id (Dramatiq's or the ``.XQ`` one), if any."""
        return self._letters.get(message_id)

    def find(self, selection: Selection, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters ``selection`` matches."""
        return selection.select(self._letters, limit)

    def entries(
        self, *, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The audit log, newest first (of one target or action, when given)."""
        return self._audit.entries(target=target, action=action, limit=limit)

    def _record(
        self,
        action: str,
        target: str,
        letter: DeadLetter | None,
        *,
        actor: str,
        reason: str,
        outcome: Outcome,
    ) -> Outcome:
        self._audit.record(
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            outcome=outcome.outcome,
            queue=letter.queue if letter else None,
            job_id=_job_id(letter),
            diff=outcome.diff,
        )
        return outcome

    def replay(self, message_id: str, *, actor: str, reason: str) -> Outcome:
        """Send the dead letter back to its queue (same id and options), job requeued.

        An invalid payload is not replayed (``invalid``); an unknown id is ``gone``.
        """
        letter = self._letters.get(message_id)
        return self.replay_letter(
            letter.message_id if letter else message_id, letter, actor=actor, reason=reason
        )

    def replay_letter(
        self, message_id: str, letter: DeadLetter | None, *, actor: str, reason: str
    ) -> Outcome:
        """``replay`` of a dead letter already read (None: it was not found)."""
        return self._record(
            "replay",
            message_id,
            letter,
            actor=actor,
            reason=reason,
            outcome=self._replayed(message_id, letter),
        )

    def _replayed(self, message_id: str, letter: DeadLetter | None) -> Outcome:
        if letter is None:
            return _gone(message_id)
        job_id = _job_id(letter)
        problems = violations(letter, letter.payload)
        if problems:
            joined = "; ".join(problems)
            return Outcome(
                "invalid",
                f"skipped: invalid payload: {joined}",
                f"skipped {message_id}: invalid payload ({joined})",
                violations=tuple(problems),
                job_id=job_id,
            )
        # The job is requeued before the message goes back: a replay that fails again
        # at once must find the job requeued already, not have its failure undone.
        key = options_of(letter).get("idempotency_key")
        requeued = bool(job_id and key) and self._progress.message_requeued(str(job_id), str(key))
        if not self._letters.replay(letter):
            if requeued:
                self._progress.requeue_withdrawn(
                    str(job_id),
                    str(key),
                    step=letter.actor,
                    error=_error_of(letter),
                    dead_letter_id=letter.message_id,
                )
            return _gone(message_id, job_id)
        job = f"job {job_id or '-'}" + (" back to processing" if requeued else "")
        return Outcome(
            "replayed",
            "replayed",
            f"replayed {message_id} to {letter.queue} ({job})",
            job_id=job_id,
        )

    def purge(self, message_id: str, *, actor: str, reason: str) -> Outcome:
        """Delete the dead letter for good (its job stays failed); unknown is ``gone``."""
        letter = self._letters.get(message_id)
        return self.purge_letter(
            letter.message_id if letter else message_id, letter, actor=actor, reason=reason
        )

    def purge_letter(
        self, message_id: str, letter: DeadLetter | None, *, actor: str, reason: str
    ) -> Outcome:
        """``purge`` of a dead letter already read (None: it was not found)."""
        if letter is None or not self._letters.purge(letter):
            outcome = _gone(message_id, _job_id(letter))
        else:
            outcome = Outcome(
                "purged",
                "purged",
                f"purged {message_id} from {letter.queue}",
                job_id=_job_id(letter),
            )
        return self._record(
            "purge", message_id, letter, actor=actor, reason=reason, outcome=outcome
        )

    def edit(self, message_id: str, payload: Any, *, actor: str, reason: str) -> Outcome:
        """Keep ``payload`` as the dead letter's, if its contract accepts it.

        An unknown id is ``gone`` and, as in the CLI, not audited: nothing was tried.
        """
        letter = self._letters.get(message_id)
        if letter is None:
            return _gone(message_id)
        return self.edit_letter(letter, payload, actor=actor, reason=reason)

    def edit_letter(self, letter: DeadLetter, payload: Any, *, actor: str, reason: str) -> Outcome:
        """``edit`` of a dead letter already read: ``kept``, ``unchanged`` or ``rejected``."""
        contract = options_of(letter).get("contract")
        if contract_of(letter) is None:
            return self.refuse_edit(
                letter,
                f"unknown contract {contract!r}: cannot check a payload",
                actor=actor,
                reason=reason,
            )
        if payload == letter.payload:
            unchanged = Outcome(
                "unchanged",
                "unchanged",
                f"unchanged: {letter.message_id} is as it was",
                job_id=_job_id(letter),
            )
            return self._record(
                "edit", letter.message_id, letter, actor=actor, reason=reason, outcome=unchanged
            )
        diff = payload_diff(pretty(letter.payload), pretty(payload), letter.message_id)
        problems = _new_unknown_fields(letter, payload) + violations(letter, payload)
        if problems:
            return self.refuse_edit(
                letter,
                f"{contract}: {'; '.join(problems)}",
                actor=actor,
                reason=reason,
                diff=diff,
                problems=problems,
            )
        if self._letters.replace_payload(letter, payload) is None:
            return self.refuse_edit(
                letter,
                "gone (replayed or purged meanwhile)",
                actor=actor,
                reason=reason,
                diff=diff,
                kind="gone",
            )
        kept = Outcome(
            "kept",
            "kept",
            f"kept the edited payload of {letter.message_id}",
            job_id=_job_id(letter),
            diff=diff,
        )
        return self._record(
            "edit", letter.message_id, letter, actor=actor, reason=reason, outcome=kept
        )

    def refuse_edit(
        self,
        letter: DeadLetter,
        why: str,
        *,
        actor: str,
        reason: str,
        diff: str | None = None,
        problems: list[str] | tuple[str, ...] = (),
        kind: str = "rejected",
    ) -> Outcome:
        """Audit an edit that changes nothing because of ``why`` (``rejected: why``)."""
        outcome = f"rejected: {why}"
        refused = Outcome(
            kind,
            outcome,
            f"edit {outcome}; nothing changed",
            violations=tuple(problems),
            job_id=_job_id(letter),
            diff=diff,
        )
        return self._record(
            "edit", letter.message_id, letter, actor=actor, reason=reason, outcome=refused
        )
