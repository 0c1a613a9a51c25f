"""The API's composition root, loaded by gunicorn as ``'producers.wsgi:application()'``.

gunicorn calls ``application()`` in each worker after the fork (``preload_app`` is off),
so every database pool and Redis connection belongs to the process that uses it.
Nothing happens at import time.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from dataclasses import dataclass

import falcon

from infra.bus.publisher import connect_publisher
from infra.embedded import resolve_broker_url
from infra.logs import configure_logging, get_logger
from infra.settings import Settings, load_settings
from infra.store.calls import SqlCallQueries
from infra.store.engine import create_engine, ping
from infra.store.jobs import SqlJobLedger
from infra.store.migrate import ensure_migrated
from infra.store.tenants import SqlTenantDirectory
from infra.vendors.wiring import build_adapters
from producers.app import ApiDeps, create_app
from producers.ports import ReadinessCheck


def _database_label(settings: Settings) -> str:
    return settings.database_url.split(":", 1)[0].split("+", 1)[0]


def _broker_label(settings: Settings) -> str:
    return "redis" if settings.broker.url else "embedded-valkey"


@dataclass(frozen=True)
class Api:
    """The built API and the function that closes every client it opened."""

    app: falcon.App[falcon.Request, falcon.Response]
    close: Callable[[], None]


def build_api(settings: Settings) -> Api:
    """Open the database, broker and vendor clients and build the app over them.

    Raises:
        DatabaseNotMigrated: The database is behind the code's migrations (nothing is
            left open).
    """
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
        adapters = build_adapters(settings, engine=engine, redis_url=url)
        closers.append(adapters.close)
    except BaseException:
        close()
        raise
    secret = settings.elevenlabs.webhook_secret
    admin = settings.admin_token
    deps = ApiDeps(
        max_body_bytes=settings.api.max_body_bytes,
        webhook_secret=secret.get_secret_value() if secret else None,
        signature_tolerance_s=settings.elevenlabs.signature_tolerance_s,
        admin_token=admin.get_secret_value() if admin else None,
        tenants=SqlTenantDirectory(engine),
        ledger=SqlJobLedger(engine),
        calls=SqlCallQueries(engine),
        publisher=publisher,
        vectors=adapters.vectors,
        checks=(
            ReadinessCheck("database", _database_label(settings), lambda: ping(engine)),
            ReadinessCheck("broker", _broker_label(settings), publisher.ping),
            *(ReadinessCheck(name, label, ping) for name, label, ping in adapters.probes()),
        ),
        adapters=adapters.labels,
    )
    get_logger(__name__).info("api ready", adapters=adapters.labels)
    return Api(create_app(deps), close)


def application() -> falcon.App[falcon.Request, falcon.Response]:
    """Build the API from the environment's settings; its clients close at process exit.

    Raises:
        DatabaseNotMigrated: The database is behind the code's migrations; the worker
            refuses to start (run ``switchboard db upgrade``).
    """
    settings = load_settings()
    configure_logging(settings, process="api")
    api = build_api(settings)
    # A gunicorn worker exits through sys.exit, which runs atexit handlers: its Redis,
    # database and vendor connections close cleanly instead of being dropped.
    atexit.register(api.close)
    return api.app
