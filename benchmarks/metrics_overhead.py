"""What the metrics cost on the hot paths, counting in multiprocess files as in production.

- per message: ``MessageTimings``' two hooks (a wait and a run observed in two
  histograms) around each message a worker runs;
- per request: ``RequestMetrics`` around a Falcon answer (a counter, a histogram, a live
  gauge up and down), against the same app without it;
- per scrape: adding up the files of ``--processes`` processes (``exposition``).

Run: ``.venv/bin/python -m benchmarks.metrics_overhead [--n 20000]``. The process enables
multiprocess files in a temporary directory first, like gunicorn's master and Dramatiq's
main process do.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dramatiq
import falcon
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from falcon import testing

from infra.bus.timings import MessageTimings
from infra.metrics.api import ApiMetrics
from infra.metrics.multiprocess import enable, exposition
from infra.metrics.work import WorkMetrics


def per_call_us(n: int, call: Callable[[], object]) -> float:
    """Microseconds per call of ``call``, over ``n`` calls."""
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


def message_hooks_us(n: int) -> float:
    """One message's wait and run observed."""
    timings = MessageTimings(WorkMetrics())
    broker = StubBroker(middleware=[])
    message = MessageProxy(
        dramatiq.Message(
            queue_name="calls.analyze", actor_name="analyze_call", args=(), kwargs={}, options={}
        )
    )

    def hooks() -> None:
        timings.before_process_message(broker, message)
        timings.after_process_message(broker, message)

    return per_call_us(n, hooks)


class _Ok:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        resp.media = {"status": "ok"}


def request_us(n: int, *, metered: bool) -> float:
    """One GET answered by a Falcon app, with or without ``RequestMetrics``."""
    # Imported here: producers may import infra, not the other way, and this is a script.
    from producers.request_metrics import RequestMetrics

    app = falcon.App(middleware=[RequestMetrics(ApiMetrics())] if metered else [])
    app.add_route("/healthz", _Ok())
    client = testing.TestClient(app)
    return per_call_us(n, lambda: client.simulate_get("/healthz"))


def main() -> None:
    """Print each cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        enable(Path(directory))
        hooks = message_hooks_us(args.n)
        plain = request_us(args.n, metered=False)
        metered = request_us(args.n, metered=True)
        started = time.perf_counter()
        _, body = exposition(Path(directory))
        scrape_ms = (time.perf_counter() - started) * 1000
    print(f"per message: {hooks:.1f} µs for both hooks")
    print(f"per request: {metered - plain:.1f} µs ({plain:.1f} µs without, {metered:.1f} with)")
    print(f"per scrape of this process's files: {scrape_ms:.1f} ms, {len(body)} bytes")


if __name__ == "__main__":
    main()
