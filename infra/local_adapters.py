"""Which local adapters a production process may run.

Every external system has a deterministic local adapter used when nothing is
configured. In development that is the point; in production it is usually a missing
setting (an OpenAI key that did not reach the container), so with
``SWITCHBOARD_ENVIRONMENT=production`` a process refuses to start on a local adapter
unless ``SWITCHBOARD_ALLOW_LOCAL`` names it (``analyzer,embedder,vectors``…).
"""

from __future__ import annotations

from infra.settings import LOCAL_ADAPTER_NAMES, Settings

LOCAL_ADAPTERS: dict[str, str] = {
    "analyzer": "set SWITCHBOARD_OPENAI__API_KEY (or OPENAI_API_KEY)",
    "embedder": "set SWITCHBOARD_OPENAI__API_KEY (or OPENAI_API_KEY)",
    "vectors": "set SWITCHBOARD_PINECONE__API_KEY and __INDEX_NAME, or SWITCHBOARD_QDRANT__URL",
    "transcripts": "set SWITCHBOARD_ELEVENLABS__API_KEY (or ELEVENLABS_API_KEY)",
    "telephony": "set SWITCHBOARD_CALLKARO__API_KEY (or CALLKARO_API_KEY)",
    "broker": "set SWITCHBOARD_BROKER__URL (or REDIS_URL)",
    "database": "set SWITCHBOARD_DATABASE__URL (or DATABASE_URL)",
}
"""Each local adapter's name (``LOCAL_ADAPTER_NAMES``) and how to configure the real one."""


class LocalAdapterRefused(RuntimeError):  # noqa: N818 (a refusal, not an error in the code)
    """A production process would run a local adapter that is not allowed."""


def check_local(settings: Settings, name: str) -> None:
    """Allow the local adapter ``name`` here, or refuse to start.

    Raises:
        LocalAdapterRefused: Production, and ``SWITCHBOARD_ALLOW_LOCAL`` does not name
            it; the message says what to set.
        ValueError: ``name`` is not a local adapter.
    """
    if name not in LOCAL_ADAPTER_NAMES:
        raise ValueError(f"unknown local adapter {name!r}; known: {list(LOCAL_ADAPTER_NAMES)}")
    if settings.environment != "production" or name in settings.allowed_local:
        return
    raise LocalAdapterRefused(
        f"production refuses the local {name}: {LOCAL_ADAPTERS[name]}, "
        f"or allow it with SWITCHBOARD_ALLOW_LOCAL={name}"
    )


def check_embedded(settings: Settings) -> None:
    """Refuse the embedded broker and database in production unless allowed.

    Raises:
        LocalAdapterRefused: As ``check_local``.
    """
    if not settings.broker.url:
        check_local(settings, "broker")
    if not settings.database.url:
        check_local(settings, "database")


def embedded_in_use(settings: Settings) -> list[str]:
    """``broker`` and/or ``database`` when the embedded ones serve this process."""
    return [
        name
        for name, configured in (
            ("broker", settings.broker.url),
            ("database", settings.database.url),
        )
        if not configured
    ]


def broker_label(settings: Settings) -> str:
    """``redis`` for a configured broker, ``local-valkey`` for the embedded one."""
    return "redis" if settings.broker.url else "local-valkey"


def database_label(settings: Settings) -> str:
    """The database's dialect; the embedded SQLite file is ``local-sqlite``."""
    dialect = settings.database_url.split(":", 1)[0].split("+", 1)[0]
    return dialect if settings.database.url else f"local-{dialect}"
