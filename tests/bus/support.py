"""Helpers of the bus tests: bounded waiting and a real Dramatiq worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from dramatiq import Worker

from infra.bus.broker import SwitchboardBroker


def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> float:
    """Poll ``predicate`` until it holds; return the seconds waited (fail on timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"condition not met within {timeout_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


@contextmanager
def running_worker(broker: SwitchboardBroker, *, threads: int = 2) -> Iterator[Worker]:
    """A real Dramatiq worker polling every 50 ms, stopped at the end of the block."""
    worker = Worker(broker, worker_timeout=50, worker_threads=threads)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=5_000)
