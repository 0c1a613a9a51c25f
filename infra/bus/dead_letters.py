"""Reading the dead-letter queues: each dead message with why it failed.

Dramatiq keeps a dead letter as its payload in ``<ns>:<q>.XQ.msgs`` under the id of its
last enqueue, scored by time in ``<ns>:<q>.XQ``; ``FailureRecorder`` keeps the reason
under the stable Dramatiq message id. ``DeadLetters`` joins the two.

Read-only for now: editing and replaying dead letters build on ``DeadLetter`` (which
carries both ids and the queue) without changing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis

from contracts.errors import TransientError
from infra.bus.failures import FailureRecord, failures_key
from infra.bus.queues import dead_key, dead_messages_key


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message.

    Attributes:
        message_id: Dramatiq's message id (stable across retries).
        redis_message_id: Its id in the ``.XQ`` structures.
        queue: The queue it died on.
        actor: The actor it was for.
        dead_at: When it was dead-lettered (UTC).
        message: The decoded message (queue_name, actor_name, args, kwargs, options...).
        failure: Why it failed, when the failure recorder saw it.
    """

    message_id: str
    redis_message_id: str
    queue: str
    actor: str
    dead_at: datetime
    message: dict[str, Any]
    failure: FailureRecord | None

    @property
    def payload(self) -> Any:
        """The message's single argument (a contract's JSON), or None without one."""
        args: Any = self.message.get("args") or ()
        return args[0] if len(args) == 1 else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DeadLetters:
    """The dead letters of every queue of a namespace.

    Args:
        client: A Redis client (any ``decode_responses`` setting).
        namespace: The broker's key namespace.
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def queues(self) -> list[str]:
        """Queues that have dead letters now, by name.

        Raises:
            TransientError: Redis could not be reached.
        """
        prefix, suffix = f"{self.namespace}:", ".XQ"
        try:
            keys = [_text(k) for k in self.client.scan_iter(match=f"{prefix}*{suffix}")]
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error
        return sorted(k[len(prefix) : -len(suffix)] for k in keys)

    def get(self, message_id: str) -> DeadLetter | None:
        """The dead letter with this Dramatiq message id (or ``.XQ`` id), if any.

        Raises:
            TransientError: Redis could not be reached.
        """
        try:
            for queue in self.queues():
                found = self._find(queue, message_id)
                if found is not None:
                    return found
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error
        return None

    def _newest(self, queue: str, limit: int) -> list[tuple[str, float]]:
        entries: Any = self.client.zrevrange(
            dead_key(self.namespace, queue), 0, limit - 1, withscores=True
        )
        return [(_text(rid), float(score)) for rid, score in entries]

    def _find(self, queue: str, message_id: str) -> DeadLetter | None:
        record = self._failure(queue, message_id)
        candidates = [message_id]
        if record is not None and record.redis_message_id:
            candidates.insert(0, record.redis_message_id)
        for rid in candidates:
            score = self.client.zscore(dead_key(self.namespace, queue), rid)
            if score is not None:
                return self._load(queue, rid, score)
        # Without a failure record the only link is inside the payloads: scan them.
        for rid, raw in self.client.hscan_iter(dead_messages_key(self.namespace, queue)):
            if dramatiq.Message.decode(raw).message_id == message_id:
                score = self.client.zscore(dead_key(self.namespace, queue), rid)
                return self._load(queue, _text(rid), score or 0.0)
        return None

    def _load(self, queue: str, rid: str, score: float) -> DeadLetter | None:
        raw = self.client.hget(dead_messages_key(self.namespace, queue), rid)
        if raw is None:
            # Expired between the two reads: it is no longer a dead letter.
            return None
        message = dramatiq.Message.decode(raw if isinstance(raw, bytes) else raw.encode())
        return DeadLetter(
            message_id=message.message_id,
            redis_message_id=rid,
            queue=queue,
            actor=message.actor_name,
            dead_at=datetime.fromtimestamp(score / 1000, tz=UTC),
            message=message.asdict(),
            failure=self._failure(queue, message.message_id),
        )

    def _failure(self, queue: str, message_id: str) -> FailureRecord | None:
        raw = self.client.hget(failures_key(self.namespace, queue), message_id)
        return None if raw is None else FailureRecord.from_json(raw)

    # Defined last: inside the class body, later annotations would take `list` for it.
    def list(self, queue: str | None = None, limit: int = 50) -> list[DeadLetter]:
        """The most recent dead letters, newest first.

        Args:
            queue: Only this queue's; every queue's when None.
            limit: At most this many.

        Raises:
            TransientError: Redis could not be reached.
        """
        queues = [queue] if queue is not None else self.queues()
        try:
            scored = [
                (score, name, rid) for name in queues for rid, score in self._newest(name, limit)
            ]
            scored.sort(key=lambda item: item[0], reverse=True)
            letters = [self._load(name, rid, score) for score, name, rid in scored[:limit]]
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error
        return [letter for letter in letters if letter is not None]
