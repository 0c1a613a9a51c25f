"""The live-call service's checkpoints in Redis (the ``CheckpointReader`` port).

Checkpoint format (written by the live-call service; ``write_checkpoint`` writes the
same, for the demo and tests)::

    key:    <key_prefix><thread_id>            (default prefix "checkpoint:")
    type:   Redis hash
    fields: answers     JSON array of {"question": str, "answer": str,
                        "value": number | null (optional), "unit": str | null (optional)}
            status      optional, e.g. "in-progress" | "completed"
            updated_at  optional, ISO 8601 with offset

A missing key means the thread is gone (already recorded and deleted, or never
written). A key without ``answers`` or with answers that do not parse is a
``PermanentError``. Redis connection failures and timeouts are ``TransientError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import redis
from pydantic import TypeAdapter, ValidationError

from contracts import HealthAnswer
from contracts.errors import PermanentError, TransientError

DEFAULT_KEY_PREFIX = "checkpoint:"
_ANSWERS = TypeAdapter(list[HealthAnswer])


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn redis-py connection failures inside the block into ``TransientError``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise TransientError(f"checkpoint {action} failed: {exc}") from exc
    except redis.RedisError as exc:
        raise PermanentError(f"checkpoint {action} failed: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisCheckpointReader:
    """Reads (and deletes) checkpoint hashes at ``<key_prefix><thread_id>``."""

    def __init__(self, client: redis.Redis, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self._client = client
        self._key_prefix = key_prefix

    def _key(self, thread_id: str) -> str:
        return f"{self._key_prefix}{thread_id}"

    def read_answers(self, thread_id: str) -> list[HealthAnswer] | None:
        """Return the thread's health answers, or None when the checkpoint is gone.

        Raises:
            PermanentError: The checkpoint exists but has no parseable ``answers``.
            TransientError: Redis is unreachable or timed out.
        """
        with translated_errors("read"):
            fields = self._client.hgetall(self._key(thread_id))
        if not fields:
            return None
        decoded = {_text(name): _text(value) for name, value in fields.items()}
        raw = decoded.get("answers")
        if raw is None:
            raise PermanentError(f"checkpoint {thread_id} has no answers field")
        try:
            return _ANSWERS.validate_json(raw)
        except ValidationError as exc:
            raise PermanentError(f"checkpoint {thread_id} answers do not parse: {exc}") from exc

    def delete(self, thread_id: str) -> None:
        """Delete the checkpoint (no error when it is already gone).

        Raises:
            TransientError: Redis is unreachable or timed out.
        """
        with translated_errors("delete"):
            self._client.delete(self._key(thread_id))

    def ping(self) -> None:
        """Check Redis answers.

        Raises:
            TransientError: Redis is unreachable or timed out.
        """
        with translated_errors("ping"):
            self._client.ping()

    def close(self) -> None:
        """Close the Redis client's connections."""
        self._client.close()


def write_checkpoint(
    client: redis.Redis,
    *,
    key_prefix: str,
    thread_id: str,
    answers: Sequence[HealthAnswer],
    status: str = "completed",
) -> None:
    """Write a checkpoint in the live-call service's format (replaces the hash).

    Raises:
        TransientError: Redis is unreachable or timed out.
    """
    key = f"{key_prefix}{thread_id}"
    payload = json.dumps([answer.model_dump(mode="json") for answer in answers])
    with translated_errors("write"):
        pipeline = client.pipeline(transaction=True)
        pipeline.delete(key)
        pipeline.hset(
            key,
            mapping={
                "answers": payload,
                "status": status,
                "updated_at": datetime.now(UTC).isoformat(),
            },
        )
        pipeline.execute()
