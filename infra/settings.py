"""Configuration: one pydantic-settings class, read once at each process's root.

Environment variables use the prefix ``SWITCHBOARD_`` and ``__`` between sections
(``SWITCHBOARD_BROKER__URL``). The names the old Node services used are accepted too,
with lower priority: ``REDIS_URL``, ``DATABASE_URL``, ``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``PINECONE_API_KEY``, ``PINECONE_INDEX_NAME``,
``ELEVENLABS_WEBHOOK_SECRET``, ``ELEVENLABS_API_KEY``, ``CALLKARO_API_KEY``,
``CALLKARO_BASE_URL``, ``CALLKARO_AGENT_ID``, ``CALLKARO_WEBHOOK_SECRET``.

This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

LEGACY_NAMES: dict[str, tuple[str, str]] = {
    "REDIS_URL": ("broker", "url"),
    "DATABASE_URL": ("database", "url"),
    "OPENAI_API_KEY": ("openai", "api_key"),
    "OPENAI_BASE_URL": ("openai", "base_url"),
    "PINECONE_API_KEY": ("pinecone", "api_key"),
    "PINECONE_INDEX_NAME": ("pinecone", "index_name"),
    "ELEVENLABS_WEBHOOK_SECRET": ("elevenlabs", "webhook_secret"),
    "ELEVENLABS_API_KEY": ("elevenlabs", "api_key"),
    "CALLKARO_API_KEY": ("callkaro", "api_key"),
    "CALLKARO_BASE_URL": ("callkaro", "base_url"),
    "CALLKARO_AGENT_ID": ("callkaro", "agent_id"),
    "CALLKARO_WEBHOOK_SECRET": ("callkaro", "webhook_secret"),
}
"""Variable names of the old Node services → (section, field)."""

LOCAL_ADAPTER_NAMES = (
    "analyzer",
    "embedder",
    "vectors",
    "transcripts",
    "telephony",
    "broker",
    "database",
)
"""Local adapters ``SWITCHBOARD_ALLOW_LOCAL`` may name (see ``infra.local_adapters``)."""


class BrokerSettings(BaseModel):
    """The Dramatiq bus on Redis."""

    url: str | None = Field(
        default=None, description="redis:// URL; unset starts the embedded Valkey."
    )
    namespace: str = Field(default="switchboard", description="Key prefix of every queue.")
    heartbeat_timeout_ms: int = Field(
        default=30_000, description="A worker silent this long is dead; its messages requeue."
    )
    maintenance_interval_s: float = Field(
        default=10.0, description="How often each worker forces queue maintenance."
    )
    dead_message_ttl_ms: int = Field(
        default=30 * 24 * 3600 * 1000, description="How long dead letters are kept (30 days)."
    )
    socket_timeout_s: float = Field(default=5.0, description="Redis socket timeouts.")


class DatabaseSettings(BaseModel):
    """The SQL store."""

    url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset uses SQLite in the data dir."
    )
    echo: bool = Field(default=False, description="Log every SQL statement.")


class VendorLimits(BaseModel):
    """A rate-limited vendor's limits, shared by every step and worker that calls it."""

    concurrency: int = Field(default=5, ge=1, description="Calls in flight at once, at most.")
    rate_per_s: int = Field(default=10, ge=1, description="Calls started per second, at most.")


class OpenAISettings(VendorLimits):
    """Any OpenAI-compatible endpoint, for analysis and embeddings."""

    api_key: SecretStr | None = Field(default=None, description="API key; unset uses local.")
    base_url: str | None = Field(default=None, description="Endpoint, e.g. a proxy or Azure.")
    chat_model: str = Field(default="gpt-4o-mini", description="Model for call analysis.")
    embedding_model: str = Field(default="text-embedding-3-small", description="Embeddings.")
    embedding_dimensions: int = Field(default=1536, description="Embedding length.")
    timeout_s: float = Field(default=30.0, description="Per request; below the time limit.")
    max_retries: int = Field(default=1, description="SDK retries (they multiply with ours).")


class PineconeSettings(VendorLimits):
    """Pinecone, when configured, holds the vectors."""

    api_key: SecretStr | None = Field(default=None, description="API key.")
    index_name: str | None = Field(default=None, description="Index name.")
    index_host: str | None = Field(
        default=None, description="Data-plane host; saves a describe call when set."
    )
    timeout_s: float = Field(default=10.0, description="Per request.")


class QdrantSettings(VendorLimits):
    """Qdrant, when configured, holds the vectors."""

    url: str | None = Field(default=None, description="Server URL, or `:memory:`.")
    api_key: SecretStr | None = Field(default=None, description="API key.")
    collection: str = Field(default="switchboard-calls", description="Collection name.")


class VectorSettings(BaseModel):
    """Which vector index to use."""

    backend: Literal["auto", "local", "pinecone", "qdrant"] = Field(
        default="auto", description="auto: Pinecone if configured, else Qdrant, else local."
    )
    local_dimensions: int = Field(default=256, description="Local hashing embedder size.")


class ElevenLabsSettings(VendorLimits):
    """ElevenLabs post-call webhooks and conversation API."""

    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC secret of the post-call webhook."
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key to fetch transcripts not sent inline."
    )
    base_url: str = Field(default="https://api.elevenlabs.io", description="API base URL.")
    signature_tolerance_s: int = Field(
        default=1800, description="Max age (and future skew) of a signature timestamp."
    )
    timeout_s: float = Field(default=10.0, description="Per request.")


class CallKaroSettings(VendorLimits):
    """The telephony provider (a CallKaro-style HTTP API); unset uses the simulator."""

    api_key: SecretStr | None = Field(default=None, description="API key; unset: simulator.")
    base_url: str = Field(default="https://api.callkaro.ai", description="API base URL.")
    agent_id: str | None = Field(default=None, description="Default voice agent for calls.")
    caller_id: str | None = Field(default=None, description="Default caller id (E.164).")
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC secret of its status webhooks."
    )
    signature_tolerance_s: int = Field(
        default=300, description="Largest age (and future skew) of a timestamped signature."
    )
    timeout_s: float = Field(default=10.0, description="Per request; below the time limit.")


class SimulatorSettings(BaseModel):
    """The local telephony simulator: plays each call's status webhooks back to the API."""

    webhook_url: str = Field(
        default="http://127.0.0.1:8000/api/webhooks/callkaro",
        description="Where the simulated status webhooks go.",
    )
    step_s: float = Field(default=0.5, ge=0, description="Pause between simulated events.")
    outcomes: dict[str, Literal["completed", "failed", "no_answer", "busy"]] = Field(
        default_factory=dict,
        description='Outcome per number, e.g. {"+14155550100":"busy"}; others complete.',
    )


class DailyCallsSettings(BaseModel):
    """Daily calls: the tick, the grace window and retries."""

    tick_every_min: int = Field(
        default=5, ge=1, le=60, description="Minutes between daily-calls ticks (divides 60)."
    )
    grace_min: int = Field(
        default=30, ge=1, description="A call or slot later than this is missed, not made."
    )
    retries: int = Field(
        default=2, ge=0, description="Retries of a failed, busy or unanswered call."
    )
    retry_after_min: int = Field(default=30, ge=1, description="Minutes before a retry.")
    trigger_every_s: int = Field(
        default=10, ge=1, description="`POST /api/queue/trigger` emits at most one tick per this."
    )

    @field_validator("tick_every_min")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if 60 % value:
            raise ValueError("must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)")
        return value

    @model_validator(mode="after")
    def _grace_outlasts_a_tick(self) -> DailyCallsSettings:
        # A call due just after a tick is placed by the next one, a tick later: a
        # shorter grace would mark every such call missed.
        if self.grace_min <= self.tick_every_min:
            raise ValueError(
                f"grace_min ({self.grace_min}) must be longer than tick_every_min "
                f"({self.tick_every_min})"
            )
        return self


class ApiSettings(BaseModel):
    """The HTTP producers (Falcon on gunicorn) and the edge in front of them (``infra.edge``)."""

    host: str = Field(default="127.0.0.1", description="Bind address.")
    port: int = Field(default=8000, description="Bind port.")
    workers: int = Field(default=2, description="gunicorn worker processes.")
    threads: int = Field(default=4, description="Threads per gunicorn worker.")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Larger bodies get 413.")
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=8 * 1024,
        description="Larger request heads get 431 (414 when the request line alone is).",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A request head not whole this long after its start: 408."
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A body not whole this long after its head: 408; also bounds reading answers.",
    )
    keepalive_s: float = Field(
        default=5.0, gt=0, description="An idle kept-alive connection is closed after this."
    )
    answer_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="The app's answer not started this long after the request: 504.",
    )
    max_connections: int = Field(
        default=512, ge=1, description="Client connections held at once; more are answered 503."
    )
    console_session_hours: float = Field(
        default=12, gt=0, le=24 * 7, description="A login to the /admin console lasts this long."
    )
    prometheus_port: int = Field(
        default=9190, ge=0, description="/metrics port, served by gunicorn's master (0: off)."
    )
    prometheus_host: str = Field(
        default="127.0.0.1", description="Metrics bind address (0.0.0.0 in containers)."
    )


class StepSettings(BaseModel):
    """Defaults of every pipeline actor, and how steps wait for a vendor's throttle."""

    max_retries: int = Field(default=3, ge=0, description="Attempts after the first.")
    min_backoff_ms: int = Field(default=1_000, ge=1, description="First retry delay.")
    max_backoff_ms: int = Field(default=60_000, ge=1, description="Largest retry delay.")
    time_limit_ms: int = Field(
        default=120_000, ge=1_000, description="A step running longer is killed."
    )
    throttle_wait_s: float = Field(
        default=2.0, ge=0, description="Wait for a vendor slot before deferring the message."
    )
    defer_max_ms: int = Field(
        default=30_000, ge=500, description="Longest delay of a message deferred for a slot."
    )


class ActorOverride(BaseModel):
    """One actor's options where they differ (``SWITCHBOARD_ACTORS__<ACTOR>__<OPTION>``)."""

    max_retries: int | None = Field(default=None, ge=0, description="Attempts after the first.")
    min_backoff_ms: int | None = Field(default=None, ge=1, description="First retry delay.")
    max_backoff_ms: int | None = Field(default=None, ge=1, description="Largest retry delay.")
    time_limit_ms: int | None = Field(
        default=None, ge=1_000, description="A run longer than this is killed."
    )


class WorkerSettings(BaseModel):
    """The Dramatiq worker."""

    processes: int = Field(default=1, description="Worker processes.")
    threads: int = Field(default=8, description="Threads per process.")
    prometheus_port: int = Field(
        default=9191, ge=0, description="Health and metrics port (0: off)."
    )
    prometheus_host: str = Field(
        default="127.0.0.1", description="Metrics bind address (0.0.0.0 in containers)."
    )
    serve_probes: bool = Field(
        default=True,
        description="Serve the port from this process group; switchboard worker turns it off "
        "in all groups but the first.",
    )
    shutdown_timeout_s: float = Field(
        default=100.0,
        gt=0,
        description="On SIGTERM, how long running steps may take to finish (the container's "
        "stop grace must be longer: compose gives 2 min).",
    )


class CheckpointSettings(BaseModel):
    """Where the live-call service keeps call checkpoints."""

    redis_url: str | None = Field(default=None, description="Unset: the broker's Redis.")
    key_prefix: str = Field(default="checkpoint:", description="Hash key is prefix + thread id.")


class SchedulerSettings(BaseModel):
    """The clock process."""

    relay_interval_s: float = Field(default=2.0, gt=0, description="Inbox relay tick period.")
    relay_min_age_s: float = Field(
        default=2.0, ge=0, description="Only relay jobs accepted at least this long ago."
    )
    lease_ttl_s: float = Field(default=30.0, gt=0, description="Leader lease; renewed each tick.")
    stall_check_interval_s: float = Field(
        default=60.0, gt=0, description="How often stalled jobs are looked for."
    )
    stalled_after_s: float = Field(
        default=900.0, gt=0, description="A published job without progress this long is stalled."
    )
    max_redrives: int = Field(
        default=3, ge=0, description="Re-drives of a stalled job before it is failed."
    )
    prometheus_port: int = Field(
        default=9192, ge=0, description="Health and metrics port (0: off)."
    )
    prometheus_host: str = Field(
        default="127.0.0.1", description="Health and metrics bind address."
    )


class IntakeSettings(BaseModel):
    """How producers accept requests."""

    max_json_depth: int = Field(
        default=64, ge=2, le=500, description="Deepest JSON nesting accepted."
    )
    publish_queue_size: int = Field(
        default=1_000, ge=1, description="Accepted jobs waiting for the API's publisher."
    )
    breaker_cooldown_s: float = Field(
        default=2.0, gt=0, description="After a publish fails, leave jobs to the relay this long."
    )


class HealthSettings(BaseModel):
    """Readiness probes, run in the background of every process."""

    interval_s: float = Field(default=2.0, gt=0, description="How often dependencies are probed.")
    timeout_s: float = Field(default=1.0, gt=0, description="Time a probe may take.")


DAY_MS = 24 * 3600 * 1000


class RetentionSettings(BaseModel):
    """How long finished records are kept, in days (0: for ever); see README "Retention"."""

    completed_jobs_days: int = Field(
        default=14, ge=0, description="Completed jobs other than calls (ticks), with their steps."
    )
    failed_jobs_days: int = Field(
        default=60, ge=0, description="Failed jobs other than calls; must outlast dead letters."
    )
    calls_days: int = Field(
        default=365,
        ge=0,
        description="A finished call: jobs, transcript, summary, answers, callback, vectors.",
    )
    outbound_calls_days: int = Field(
        default=90, ge=0, description="Finished daily calls and callbacks placed, with events."
    )
    intake_rejections_days: int = Field(
        default=30, ge=0, description="Webhooks refused at intake (unknown agent), with bodies."
    )
    batch_size: int = Field(
        default=500, ge=1, le=5_000, description="Records deleted per transaction."
    )
    scheduled: bool = Field(
        default=True, description="The scheduler applies this retention once a day."
    )
    hour_utc: int = Field(default=3, ge=0, le=23, description="Hour (UTC) of the daily run.")
    max_per_run: int = Field(
        default=100_000, ge=1, description="Most records of each kind one scheduled run deletes."
    )


class Settings(BaseSettings):
    """Everything configurable, built once per process at its root."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
    )

    data_dir: Path = Field(default=Path(".switchboard"), description="Local state directory.")
    environment: Literal["development", "production"] = Field(
        default="development",
        description="production: JSON logs; local adapters refused unless allowed.",
    )
    log_level: str = Field(default="INFO", description="Root log level.")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console in development, JSON in production."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token that sees every tenant."
    )
    allow_local: str = Field(
        default="",
        description="In production, local adapters allowed anyway (e.g. `analyzer,vectors`).",
    )
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    pinecone: PineconeSettings = Field(default_factory=PineconeSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    elevenlabs: ElevenLabsSettings = Field(default_factory=ElevenLabsSettings)
    callkaro: CallKaroSettings = Field(default_factory=CallKaroSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    daily_calls: DailyCallsSettings = Field(default_factory=DailyCallsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    steps: StepSettings = Field(default_factory=StepSettings)
    actors: dict[str, ActorOverride] = Field(
        default_factory=dict, description="Per-actor options, by actor name."
    )
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @model_validator(mode="after")
    def _records_outlast_their_dead_letters(self) -> Settings:
        # A replayed dead letter reports progress to its job: a job deleted before its
        # dead letters expire would leave their replay without a record. The daily run
        # may come up to a day late, hence the extra day.
        ttl_days = self.broker.dead_message_ttl_ms / DAY_MS
        least = math.ceil(ttl_days) + 1
        retention = self.retention
        for name, days in (
            ("failed_jobs_days", retention.failed_jobs_days),
            ("calls_days", retention.calls_days),
        ):
            if 0 < days < least:
                raise ValueError(
                    f"retention.{name} ({days}) must be 0 (for ever) or at least {least}: "
                    f"the dead letters' {ttl_days:g} days (broker.dead_message_ttl_ms) "
                    "and a day for the daily run"
                )
        return self

    @field_validator("allow_local")
    @classmethod
    def _known_local_adapters(cls, value: str) -> str:
        names = {n.strip() for n in value.split(",") if n.strip()}
        unknown = sorted(names - set(LOCAL_ADAPTER_NAMES))
        if unknown:
            raise ValueError(
                f"unknown local adapters {unknown}; known: {list(LOCAL_ADAPTER_NAMES)}"
            )
        return value

    @property
    def allowed_local(self) -> frozenset[str]:
        """The names listed in ``allow_local``."""
        return frozenset(n.strip() for n in self.allow_local.split(",") if n.strip())

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file used when no database URL is set."""
        return self.data_dir / "switchboard.db"

    @property
    def database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file's."""
        return self.database.url or f"sqlite:///{self.sqlite_path.resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then SWITCHBOARD_ variables, then the legacy names."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            LegacyEnvSource(settings_cls),
        )


class LegacyEnvSource(PydanticBaseSettingsSource):
    """Reads the old Node services' variable names into their sections."""

    def get_field_value(
        self,
        field: FieldInfo,  # noqa: ARG002 (the base class's signature)
        field_name: str,
    ) -> tuple[Any, str, bool]:
        """Unused: values are produced section by section in ``__call__``."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """Map each legacy variable that is set to its nested field."""
        values: dict[str, dict[str, str]] = {}
        for name, (section, field) in LEGACY_NAMES.items():
            value = os.environ.get(name)
            if value:
                values.setdefault(section, {})[field] = value
        return values


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (and explicit overrides, for tests)."""
    return Settings(**overrides)


def describe_variables() -> list[tuple[str, str, str]]:
    """Every environment variable the settings read: (name, default, description).

    Used to write and check ``infra/deploy/example.env`` and the README's table.
    """
    rows: list[tuple[str, str, str]] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if name == "actors":
            rows.extend(
                (
                    f"SWITCHBOARD_ACTORS__<ACTOR>__{sub_name.upper()}",
                    "",
                    f"{sub_field.description} Per actor, e.g. ACTORS__ANALYZE_CALL__…",
                )
                for sub_name, sub_field in ActorOverride.model_fields.items()
            )
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub_name, sub_field in annotation.model_fields.items():
                rows.append(
                    (
                        f"SWITCHBOARD_{name.upper()}__{sub_name.upper()}",
                        _default_text(sub_field),
                        sub_field.description or "",
                    )
                )
        else:
            rows.append(
                (f"SWITCHBOARD_{name.upper()}", _default_text(field), field.description or "")
            )
    return rows


def _default_text(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    return "" if default is None else str(default)


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, to pass on to child processes.

    Children need PATH, locale and the like; their own ``Settings`` interprets the rest.
    """
    return dict(os.environ)
