"""Reading the dead-letter queues: each dead message with why it failed.

Dramatiq keeps a dead letter as its payload in ``<ns>:<q>.XQ.msgs`` under the id of its
last enqueue, scored by time in ``<ns>:<q>.XQ``; ``FailureRecorder`` keeps the reason
under the stable Dramatiq message id. ``DeadLetters`` joins the two.

Writes (``replay``, ``purge``, ``replace_payload``) are single Lua scripts, atomic
against each other: a dead letter replayed twice at once is enqueued once, the second
call finding it gone. A replayed message keeps its Dramatiq message id and options (its
job id and idempotency key among them, so the step's effects stay single) with its
retry count reset, and goes to the end of its queue.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace as replace_letter
from datetime import UTC, datetime
from itertools import islice
from typing import Any, NamedTuple

import dramatiq
import redis

from contracts.errors import TransientError
from infra.bus.failures import FailureRecord, failures_index_key, failures_key
from infra.bus.queues import dead_key, dead_messages_key, messages_key, ready_key

PAGE = 500
"""Dead letters read per round of ``DeadLetters.newest`` (three Redis round trips each)."""


class LetterKey(NamedTuple):
    """Where a dead letter is: enough to read it again (``DeadLetters.load``), no payload."""

    message_id: str
    queue: str
    redis_message_id: str


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

    @property
    def key(self) -> LetterKey:
        """Where it is, to read it again later."""
        return LetterKey(self.message_id, self.queue, self.redis_message_id)


REPLAY_SCRIPT = """
if redis.call("zrem", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("hdel", KEYS[2], ARGV[1])
redis.call("hdel", KEYS[3], ARGV[4])
redis.call("zrem", KEYS[6], ARGV[4])
if ARGV[2] ~= "" then
    redis.call("hset", KEYS[5], ARGV[2], ARGV[3])
    redis.call("rpush", KEYS[4], ARGV[2])
end
return 1
"""
"""Move a dead letter out of the DLQ, and (with a new id) onto its queue, atomically.

KEYS: xq, xq msgs, failures, queue, queue msgs, failures index;
ARGV: dead id, new id ("" to purge), message data, message id.
"""

REPLACE_SCRIPT = """
if redis.call("hexists", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
return 1
"""
"""Replace a dead letter's stored message while it is one. KEYS: xq msgs; ARGV: id, data."""

RESET_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id")
"""Options of a dead message that a replay starts afresh (Dramatiq's Retries and ours)."""


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


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
        self._script = client.register_script(REPLAY_SCRIPT)
        self._replace = client.register_script(REPLACE_SCRIPT)

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

    def count(self, queue: str | None = None) -> int:
        """How many dead letters there are (in ``queue``, or in every queue).

        Raises:
            TransientError: Redis could not be reached.
        """
        queues = [queue] if queue is not None else self.queues()
        try:
            return sum(int(self.client.zcard(dead_key(self.namespace, q))) for q in queues)
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error

    def newest(self, queue: str | None = None, *, page: int = PAGE) -> Iterator[DeadLetter]:
        """Every dead letter (of ``queue``, or of every queue), newest first, a page at a time.

        Safe to act on while reading: each queue is read by time from where the last page
        ended, so a letter replayed or purged meanwhile moves nothing along, and one
        dead-lettered after the read began (a replay failing again) is not read again.

        Raises:
            TransientError: Redis could not be reached.
        """
        queues = [queue] if queue is not None else self.queues()
        pages = [self._pages(name, page) for name in queues]
        merged = heapq.merge(*pages, key=lambda letter: letter.dead_at, reverse=True)
        try:
            yield from merged
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error

    def _pages(self, queue: str, size: int) -> Iterator[DeadLetter]:
        xq = dead_key(self.namespace, queue)
        top: float | str = "+inf"
        seen_at_top: set[str] = set()  # read already, scored ``top`` (ties by the ms)
        while True:
            entries: Any = self.client.zrevrangebyscore(
                xq, top, "-inf", start=0, num=size + len(seen_at_top), withscores=True
            )
            fresh = [
                (rid, float(score))
                for rid, score in ((_text(r), s) for r, s in entries)
                if not (float(score) == top and rid in seen_at_top)
            ]
            if not fresh:
                return
            yield from self._load_page(queue, fresh)
            last = fresh[-1][1]
            if last != top:
                top, seen_at_top = last, set()
            seen_at_top.update(rid for rid, score in fresh if score == last)

    def _load_page(self, queue: str, entries: list[tuple[str, float]]) -> list[DeadLetter]:
        raws: list[Any] = self.client.hmget(
            dead_messages_key(self.namespace, queue), [rid for rid, _ in entries]
        )
        loaded = [
            (rid, score, dramatiq.Message.decode(raw if isinstance(raw, bytes) else raw.encode()))
            for (rid, score), raw in zip(entries, raws, strict=True)
            if raw is not None  # expired between the two reads: no longer a dead letter
        ]
        if not loaded:
            return []
        failures: list[Any] = self.client.hmget(
            failures_key(self.namespace, queue), [message.message_id for *_, message in loaded]
        )
        return [
            DeadLetter(
                message_id=message.message_id,
                redis_message_id=rid,
                queue=queue,
                actor=message.actor_name,
                dead_at=datetime.fromtimestamp(score / 1000, tz=UTC),
                message=message.asdict(),
                failure=None if failure is None else FailureRecord.from_json(failure),
            )
            for (rid, score, message), failure in zip(loaded, failures, strict=True)
        ]

    def load(self, key: LetterKey) -> DeadLetter | None:
        """The dead letter at ``key``, or None when it is no longer one.

        Raises:
            TransientError: Redis could not be reached.
        """
        try:
            score = self.client.zscore(dead_key(self.namespace, key.queue), key.redis_message_id)
            return None if score is None else self._load(key.queue, key.redis_message_id, score)
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error

    def _find(self, queue: str, message_id: str) -> DeadLetter | None:
        record = self._failure(queue, message_id)
        candidates = [message_id]
        if record is not None and record.redis_message_id:
            candidates.insert(0, record.redis_message_id)
        for rid in candidates:
            score = self.client.zscore(dead_key(self.namespace, queue), rid)
            if score is not None:
                return self._load(queue, rid, score)
        # Without a failure record the only link is inside the payloads: scan them, but
        # only for what can be a Dramatiq message id (a UUID), not for any mistyped id.
        if not _is_uuid(message_id):
            return None
        for rid, raw in self.client.hscan_iter(dead_messages_key(self.namespace, queue)):
            if dramatiq.Message.decode(raw).message_id == message_id:
                score = self.client.zscore(dead_key(self.namespace, queue), rid)
                return self._load(queue, _text(rid), score or 0.0)
        return None

    def _load(self, queue: str, rid: str, score: float) -> DeadLetter | None:
        return next(iter(self._load_page(queue, [(rid, score)])), None)

    def _failure(self, queue: str, message_id: str) -> FailureRecord | None:
        raw = self.client.hget(failures_key(self.namespace, queue), message_id)
        return None if raw is None else FailureRecord.from_json(raw)

    def replay(self, letter: DeadLetter, payload: Any | None = None) -> bool:
        """Enqueue the dead letter again (with ``payload`` instead of its own, if given).

        Returns:
            False when it was no longer a dead letter (replayed or purged meanwhile).

        Raises:
            TransientError: Redis could not be reached.
        """
        message = dict(letter.message)
        options = {k: v for k, v in message.get("options", {}).items() if k not in RESET_OPTIONS}
        redis_id = str(uuid.uuid4())
        options["redis_message_id"] = redis_id
        args = [payload] if payload is not None else list(message.get("args") or ())
        fresh: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=letter.queue,
            actor_name=letter.actor,
            args=tuple(args),
            kwargs=message.get("kwargs") or {},
            options=options,
            message_id=letter.message_id,
            message_timestamp=int(time.time() * 1000),
        )
        return self._move(letter, redis_id, fresh.encode())

    def purge(self, letter: DeadLetter) -> bool:
        """Delete the dead letter and its failure record.

        Returns:
            False when it was no longer a dead letter.

        Raises:
            TransientError: Redis could not be reached.
        """
        return self._move(letter, "", b"")

    def replace_payload(self, letter: DeadLetter, payload: Any) -> DeadLetter | None:
        """Keep ``payload`` as the dead letter's argument (an edit before a replay).

        Returns:
            The edited dead letter, or None when it was no longer a dead letter.

        Raises:
            TransientError: Redis could not be reached.
        """
        message: dramatiq.Message[Any] = dramatiq.Message(**{**letter.message, "args": (payload,)})
        key = dead_messages_key(self.namespace, letter.queue)
        try:
            # HSET XX: only while the dead letter is still there.
            replaced = self._replace(keys=[key], args=[letter.redis_message_id, message.encode()])
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error
        if not replaced:
            return None
        return replace_letter(letter, message=message.asdict())

    def _move(self, letter: DeadLetter, new_id: str, data: bytes) -> bool:
        ns, queue = self.namespace, letter.queue
        try:
            moved = self._script(
                keys=[
                    dead_key(ns, queue),
                    dead_messages_key(ns, queue),
                    failures_key(ns, queue),
                    ready_key(ns, queue),
                    messages_key(ns, queue),
                    failures_index_key(ns, queue),
                ],
                args=[letter.redis_message_id, new_id, data, letter.message_id],
            )
        except redis.RedisError as error:
            raise TransientError(f"broker unreachable: {error}") from error
        return bool(moved)

    # Defined last: inside the class body, later annotations would take `list` for it.
    def list(self, queue: str | None = None, limit: int = 50) -> list[DeadLetter]:
        """The most recent dead letters, newest first.

        Args:
            queue: Only this queue's; every queue's when None.
            limit: At most this many.

        Raises:
            TransientError: Redis could not be reached.
        """
        return list(islice(self.newest(queue, page=min(limit, PAGE)), limit))
