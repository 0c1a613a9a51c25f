"""The last slot each scheduler tick emitted, so a restarted scheduler catches up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from infra.store.engine import dialect_insert, transaction
from infra.store.jobs import utc_now
from infra.store.tables import SCHEDULER_SLOTS


class SqlSchedulerSlots:
    """Slots in the SQL store, one row per tick name.

    Raises (every method):
        TransientError: The database is unavailable.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def last_slot(self, name: str) -> datetime | None:
        """The last slot the tick ``name`` emitted, or None if it never ran."""
        with transaction(self._engine) as conn:
            slot: datetime | None = conn.execute(
                sa.select(SCHEDULER_SLOTS.c.last_slot).where(SCHEDULER_SLOTS.c.name == name)
            ).scalar_one_or_none()
        return slot

    def record_slot(self, name: str, slot: datetime) -> None:
        """Remember that ``name`` emitted ``slot`` (never moves backwards)."""
        now = self._clock()
        with transaction(self._engine) as conn:
            insert = dialect_insert(conn, SCHEDULER_SLOTS).values(
                name=name, last_slot=slot, updated_at=now
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"last_slot": slot, "updated_at": now},
                    where=SCHEDULER_SLOTS.c.last_slot < slot,
                )
            )
