"""Applying retention: each kind's finished records older than its cutoff, in batches.

``switchboard purge`` and the scheduler's daily run both call ``Retention.run`` with
rules: the configured days per kind (``RetentionSettings``), or one age for every kind
(``--older-than DAYS``). Per kind, ``run`` reads a batch on an index (oldest first),
deletes the vectors of the calls in it from the vector index, then deletes the
batch's rows in one transaction (``infra.store.retention``), until nothing older is
left or ``limit`` records went. A vector index that cannot be reached stops the run
before the batch's rows go, so the next run finds those calls again.

A run that deleted something is written to the audit log (action ``retention``),
which retention itself never deletes. A dry run walks the same batches and counts;
it does not ask the vector index (every call would cost it a fetch).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from infra.call_vectors import VectorEraser, delete_call_vectors
from infra.settings import RetentionSettings, Settings
from infra.store.audit import SqlAudit
from infra.store.erasure import CallKey, Tally
from infra.store.retention import KINDS, Kind, Sweep
from infra.vendors.wiring import Adapters

LABELS: dict[Kind, str] = {
    "calls": "calls",
    "completed_jobs": "completed jobs",
    "failed_jobs": "failed jobs",
    "outbound_calls": "outbound calls",
    "call_events": "unmatched call events",
    "intake_rejections": "intake rejections",
}
"""How each kind is named to people."""

_COUNTED: dict[Kind, str] = {
    "calls": "calls",
    "completed_jobs": "jobs",
    "failed_jobs": "jobs",
    "outbound_calls": "outbound calls",
    "call_events": "call events",
    "intake_rejections": "intake rejections",
}
"""The tally label whose count is the kind's number of records."""

_DAYS_SETTING: dict[Kind, Callable[[RetentionSettings], int]] = {
    "calls": lambda s: s.calls_days,
    "completed_jobs": lambda s: s.completed_jobs_days,
    "failed_jobs": lambda s: s.failed_jobs_days,
    "outbound_calls": lambda s: s.outbound_calls_days,
    # Events of no known call are telephony records like the calls': same age.
    "call_events": lambda s: s.outbound_calls_days,
    "intake_rejections": lambda s: s.intake_rejections_days,
}


@dataclass(frozen=True)
class Rule:
    """How long one kind is kept.

    Attributes:
        kind: The kind of record.
        days: Days kept after they finished; 0 keeps them for ever.
        cutoff: Records that finished before it go (None when kept for ever).
    """

    kind: Kind
    days: int
    cutoff: datetime | None


def configured_rules(settings: RetentionSettings, now: datetime) -> list[Rule]:
    """Each kind's rule from the settings."""
    return [_rule(kind, _DAYS_SETTING[kind](settings), now) for kind in KINDS]


def uniform_rules(days: int, now: datetime) -> list[Rule]:
    """The same age for every kind (``purge --older-than DAYS``)."""
    return [_rule(kind, days, now) for kind in KINDS]


def _rule(kind: Kind, days: int, now: datetime) -> Rule:
    return Rule(kind, days, now - timedelta(days=days) if days else None)


@dataclass
class KindResult:
    """What a run did to one kind.

    Attributes:
        rule: The rule applied.
        records: Records (calls, for ``calls``) deleted, or counted in a dry run.
        tally: Rows per table (vectors included).
        more_left: The run stopped at its limit with older records left.
    """

    rule: Rule
    records: int = 0
    tally: Tally = field(default_factory=Counter)
    more_left: bool = False


@dataclass(frozen=True)
class PurgeReport:
    """What a run did, kind by kind."""

    results: list[KindResult]
    dry_run: bool

    @property
    def total(self) -> Tally:
        """Rows per table over every kind."""
        total: Tally = Counter()
        for result in self.results:
            total += result.tally
        return total

    def summary(self) -> str:
        """One line: records per kind (for logs and the audit log)."""
        parts = [
            f"{LABELS[r.rule.kind]} {r.records}" + (" (more left)" if r.more_left else "")
            for r in self.results
            if r.records or r.more_left
        ]
        rows = self.total.total()
        return (", ".join(parts) + f"; {rows} rows") if parts else "nothing older"


class Progress(Protocol):
    """Told how a run advances (the CLI draws bars; the scheduler needs none)."""

    def start(self, kind: Kind, total: int) -> None:
        """A kind's sweep begins, with ``total`` records to go."""
        ...

    def advance(self, kind: Kind, records: int) -> None:
        """``records`` more of the kind went."""
        ...


class _Silent:
    def start(self, kind: Kind, total: int) -> None:
        """Nothing to show."""

    def advance(self, kind: Kind, records: int) -> None:
        """Nothing to show."""


class Retention:
    """Applies retention rules to the SQL store and the vector index.

    Args:
        engine: The SQL store.
        vectors: The vector index calls' vectors are deleted from.
        audit: Where runs that deleted something are recorded.
        batch_size: Records read and deleted per transaction.
    """

    def __init__(
        self, engine: sa.Engine, vectors: VectorEraser, audit: SqlAudit, *, batch_size: int
    ) -> None:
        self._engine = engine
        self._vectors = vectors
        self._audit = audit
        self._batch_size = batch_size

    def plan(self, rules: Sequence[Rule]) -> dict[Kind, int]:
        """How many records of each kind are older than its cutoff now (0 when kept)."""
        return {
            rule.kind: Sweep(self._engine, rule.kind).count(rule.cutoff) if rule.cutoff else 0
            for rule in rules
        }

    def run(
        self,
        rules: Sequence[Rule],
        *,
        actor: str,
        reason: str,
        dry_run: bool = False,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> PurgeReport:
        """Delete (or count) every kind's expired records, at most ``limit`` of each.

        Raises:
            TransientError: The database or the vector index is unavailable (what
                went before stays gone; a second run carries on).
        """
        shown = progress or _Silent()
        results: list[KindResult] = []
        for rule in rules:
            result = KindResult(rule)
            results.append(result)
            if rule.cutoff is None:
                continue
            sweep = Sweep(self._engine, rule.kind)
            shown.start(rule.kind, min(sweep.count(rule.cutoff), limit or 1 << 62))
            self._sweep(sweep, rule.cutoff, result, dry_run=dry_run, limit=limit, shown=shown)
        report = PurgeReport(results, dry_run)
        if not dry_run and report.total.total():
            self._audit.record(
                actor=actor,
                action="retention",
                target=", ".join(_rule_text(rule) for rule in rules),
                reason=reason,
                outcome=report.summary(),
            )
        return report

    def _sweep(
        self,
        sweep: Sweep,
        cutoff: datetime,
        result: KindResult,
        *,
        dry_run: bool,
        limit: int | None,
        shown: Progress,
    ) -> None:
        cursor = None
        seen: set[CallKey] = set()
        while True:
            room = (
                self._batch_size if limit is None else min(self._batch_size, limit - result.records)
            )
            if room <= 0:
                result.more_left = sweep.next_batch(cutoff, cursor, 1) is not None
                return
            batch = sweep.next_batch(cutoff, cursor, room)
            if batch is None:
                return
            cursor = batch.cursor
            if sweep.kind == "calls":
                # A call whose jobs sit in two lanes (one completed, one failed) comes twice.
                batch = replace(batch, calls=[c for c in batch.calls if c not in seen])
                seen.update(batch.calls)
                if not dry_run and batch.calls:
                    result.tally["vectors"] += delete_call_vectors(self._vectors, batch.calls)
            tally = sweep.delete(batch, cutoff, dry_run=dry_run)
            went = tally.pop("calls", 0) if sweep.kind == "calls" else tally[_COUNTED[sweep.kind]]
            result.tally += tally
            result.records += went
            shown.advance(sweep.kind, went)


def retention_of(
    settings: Settings, engine: sa.Engine, redis_url: str
) -> tuple[Retention, Callable[[], None]]:
    """Retention over the configured vector index (built here); the callable closes it.

    Raises:
        ValueError: The vector index is configured incompletely.
        LocalAdapterRefused: Production would run the local index without allowing it.
    """
    adapters = Adapters(settings, engine=engine, redis_url=redis_url)
    try:
        index = adapters.vectors()
    except BaseException:
        adapters.close()
        raise
    retention = Retention(engine, index, SqlAudit(engine), batch_size=settings.retention.batch_size)
    return retention, adapters.close


def _rule_text(rule: Rule) -> str:
    return f"{LABELS[rule.kind]} > {rule.days}d" if rule.days else f"{LABELS[rule.kind]} kept"
