"""The API's composition root, loaded by gunicorn as ``'producers.wsgi:application()'``.

gunicorn calls ``application()`` in each worker after the fork (``preload_app`` is off),
so every database pool, Redis connection and background thread belongs to the process
that uses it. Nothing happens at import time.

The API builds only what it uses: the SQL store (jobs, calls, users, the call book), a
publisher on the bus, the vector index (for similar calls), a short-timeout Redis
client for the queue status, and the dead-letter desk (its own Redis client with the
bus's timeouts, the store's progress and audit log) for the admin API. Two threads run
beside the request threads: the dispatcher, which publishes accepted jobs so no request
waits on the broker, and the health monitor, which probes the database (required) and
the broker (reported, not required) for ``/readyz``.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from dataclasses import dataclass

import falcon

from infra.bus.broker import BrokerProbe, redis_client
from infra.bus.dead_letters import DeadLetters
from infra.bus.dispatch import BackgroundDispatcher
from infra.bus.publisher import connect_publisher
from infra.dlq import DeadLetterDesk
from infra.embedded import resolve_broker_url
from infra.erasure import DeskBin, Eraser
from infra.health import Dependency, HealthMonitor
from infra.intake import Intake
from infra.local_adapters import broker_label, check_embedded, database_label, embedded_in_use
from infra.logs import configure_logging, get_logger
from infra.queue_report import QueueReporter
from infra.settings import Settings, load_settings
from infra.store.admins import SqlAdminTokens
from infra.store.audit import SqlAudit
from infra.store.calls import SqlCallQueries
from infra.store.dialing import call_book
from infra.store.engine import create_engine, ping
from infra.store.erasure import SqlErasure
from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger, utc_now
from infra.store.migrate import ensure_migrated
from infra.store.progress import SqlJobProgress
from infra.store.sessions import SqlConsoleSessions
from infra.store.tenants import SqlTenantDirectory
from infra.store.users import users_of
from infra.vendors.wiring import Adapters, telephony_webhook_secret
from producers.app import ApiDeps, create_app


@dataclass(frozen=True)
class Api:
    """The built API and the function that stops its threads and closes its clients."""

    app: falcon.App[falcon.Request, falcon.Response]
    close: Callable[[], None]


def build_api(settings: Settings) -> Api:
    """Open the database, the bus and the vector index, start the API's threads.

    Raises:
        DatabaseNotMigrated: The database is behind the code's migrations (nothing is
            left open).
        LocalAdapterRefused: Production would run a local adapter that is not allowed.
    """
    check_embedded(settings)
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    closers: list[Callable[[], None]] = [engine.dispose]

    def close() -> None:
        while closers:
            closers.pop()()

    try:
        ensure_migrated(engine)
        url = resolve_broker_url(settings)
        publisher = connect_publisher(settings.broker, url)
        closers.append(publisher.close)
        adapters = Adapters(settings, engine=engine, redis_url=url)
        closers.append(adapters.close)
        vectors = adapters.vectors()
        probe = BrokerProbe(url, settings.health.timeout_s)
        closers.append(probe.close)
        # The dead-letter desk's own client: the bus's socket timeouts, not the probe's.
        letters_client = redis_client(settings.broker, url)
        closers.append(letters_client.close)
    except BaseException:
        close()
        raise
    ledger = SqlJobLedger(engine)
    dispatcher = BackgroundDispatcher(
        publisher,
        ledger,
        queue_size=settings.intake.publish_queue_size,
        cooldown_s=settings.intake.breaker_cooldown_s,
    )
    monitor = HealthMonitor(
        [
            Dependency("database", database_label(settings), lambda: ping(engine), True),
            Dependency("broker", broker_label(settings), probe, required=False),
        ],
        adapters=adapters.labels,
        interval_s=settings.health.interval_s,
        timeout_s=settings.health.timeout_s,
    )
    dispatcher.start()
    closers.append(dispatcher.stop)
    monitor.start()
    closers.append(monitor.stop)
    secret = settings.elevenlabs.webhook_secret
    admin = settings.admin_token
    jobs = SqlJobQueries(engine)
    letters = DeadLetters(letters_client, settings.broker.namespace)
    desk = DeadLetterDesk(letters, SqlJobProgress(engine), SqlAudit(engine))
    deps = ApiDeps(
        max_body_bytes=settings.api.max_body_bytes,
        max_json_depth=settings.intake.max_json_depth,
        webhook_secret=secret.get_secret_value() if secret else None,
        signature_tolerance_s=settings.elevenlabs.signature_tolerance_s,
        admin_token=admin.get_secret_value() if admin else None,
        admins=SqlAdminTokens(engine),
        tenants=SqlTenantDirectory(engine),
        ledger=ledger,
        intake=Intake(ledger, dispatcher),
        jobs=jobs,
        calls=SqlCallQueries(engine),
        vectors=vectors,
        health=monitor,
        users=users_of(engine, settings.daily_calls),
        outbound=call_book(engine, settings.daily_calls),
        telephony_secret=telephony_webhook_secret(settings),
        telephony_tolerance_s=settings.callkaro.signature_tolerance_s,
        queue_report=QueueReporter(
            probe.client, settings.broker.namespace, jobs, settings.daily_calls, utc_now
        ),
        trigger_every_s=settings.daily_calls.trigger_every_s,
        desk=desk,
        eraser=Eraser(SqlErasure(engine), vectors, SqlAudit(engine), DeskBin(letters, desk)),
        sessions=SqlConsoleSessions(engine),
        console_session_s=settings.api.console_session_hours * 3600,
    )
    get_logger(__name__).info(
        "api ready", adapters=adapters.labels, local=adapters.local + embedded_in_use(settings)
    )
    return Api(create_app(deps), close)


def application() -> falcon.App[falcon.Request, falcon.Response]:
    """Build the API from the environment's settings; it closes at process exit.

    Raises:
        DatabaseNotMigrated: The database is behind the code's migrations; the worker
            refuses to start (run ``switchboard db upgrade``).
    """
    settings = load_settings()
    configure_logging(settings, process="api")
    api = build_api(settings)
    # A gunicorn worker exits through sys.exit, which runs atexit handlers: queued jobs
    # are published, and Redis, database and vendor connections close cleanly.
    atexit.register(api.close)
    return api.app
