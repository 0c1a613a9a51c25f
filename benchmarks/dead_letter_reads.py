"""Time reading every dead letter, as `dlq list --error`, `export` and `replay --all` do.

Buries ``--letters`` dead letters on one queue of an embedded Valkey (each with a failure
record and a post-call payload of ``--turns`` transcript turns), the ``--matches`` oldest
failed with another exception, then times:

- a full read, newest first, a page at a time (``DeadLetters.newest``);
- the selection of the oldest ``--matches`` by exception type, as ``replay --all
  --error TimeoutError`` makes it (every letter read, only the matches' keys kept).

Run: ``.venv/bin/python -m benchmarks.dead_letter_reads [--letters 50000] [--turns 20]
[--matches 10] [--url redis://127.0.0.1:6379/15]`` (default: an embedded Valkey in a
temporary directory; with ``--url`` the namespace is a fresh one, deleted afterwards).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import dramatiq
import redis

from infra.bus.dead_letters import DeadLetters
from infra.bus.failures import FailureRecord, failures_key
from infra.bus.queues import dead_key, dead_messages_key
from infra.dlq import Selection
from infra.embedded import EmbeddedValkey

QUEUE = "calls.analyze"
START_MS = 1_780_000_000_000
CHUNK = 2_000


def _payload(n: int, turns: int) -> dict[str, Any]:
    return {
        "conversation_id": f"conv_{n}",
        "transcript": [
            {"role": "user", "message": "I would like to move my appointment to Friday. " * 3}
            for _ in range(turns)
        ],
    }


def bury(client: redis.Redis, namespace: str, count: int, matches: int, turns: int) -> None:
    """``count`` dead letters, the ``matches`` oldest of them failed with TimeoutError."""
    for start in range(0, count, CHUNK):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(start + CHUNK, count)):
            rid = str(uuid.uuid4())
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=QUEUE,
                actor_name="analyze_call",
                args=(_payload(n, turns),),
                kwargs={},
                options={"redis_message_id": rid, "job_id": f"job-{n}"},
            )
            record = FailureRecord(
                message_id=message.message_id,
                redis_message_id=rid,
                queue=QUEUE,
                actor="analyze_call",
                exception_type="TimeoutError" if n < matches else "PermanentError",
                exception_message="upstream",
                traceback="Traceback (most recent call last):\n  ...\n" * 10,
                attempts=5,
                failed_at="2026-06-01T00:00:00Z",
            )
            pipe.zadd(dead_key(namespace, QUEUE), {rid: START_MS + n})
            pipe.hset(dead_messages_key(namespace, QUEUE), rid, message.encode())
            pipe.hset(failures_key(namespace, QUEUE), message.message_id, record.to_json())
        pipe.execute()


def measure(url: str, count: int, matches: int, turns: int) -> None:
    """Bury the letters on ``url`` under a fresh namespace, time the reads, clean up."""
    client = redis.Redis.from_url(url)
    namespace = f"sbbench-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        bury(client, namespace, count, matches, turns)
        size = client.memory_usage(dead_messages_key(namespace, QUEUE)) or 0
        print(
            f"buried {count:,} dead letters ({size / count / 1024:.1f} KiB each in Valkey) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        letters = DeadLetters(client, namespace)

        started = time.perf_counter()
        read = sum(1 for _ in letters.newest())
        full = time.perf_counter() - started
        print(f"full read: {read:,} in {full:.2f} s ({read / full:,.0f} dead letters/s)")

        started = time.perf_counter()
        keys = [letter.key for letter in Selection(error="TimeoutError").matching(letters.newest())]
        chosen = time.perf_counter() - started
        print(f"select --error TimeoutError: {len(keys)} of {read:,} in {chosen:.2f} s")
        if len(keys) != matches:
            raise SystemExit(f"selected {len(keys)} dead letters, expected {matches}")
    finally:
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()


def main() -> None:
    """Parse the arguments and run the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=50_000)
    parser.add_argument("--matches", type=int, default=10)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--url", help="A Redis URL instead of an embedded Valkey.")
    args = parser.parse_args()
    if args.url:
        measure(args.url, args.letters, args.matches, args.turns)
        return
    with tempfile.TemporaryDirectory() as directory, EmbeddedValkey(Path(directory)) as valkey:
        measure(valkey.url, args.letters, args.matches, args.turns)


if __name__ == "__main__":
    main()
