"""Liveness and readiness: ``GET /healthz`` (no I/O) and ``GET /readyz`` (probes every dependency).

Readiness answers 503 when any probe fails, naming the failing dependency, its adapter
and the error, so a load balancer stops routing and an engineer sees why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import falcon

from infra.logs import get_logger
from producers.ports import ReadinessCheck

_log = get_logger(__name__)


class Liveness:
    """``GET /healthz``: the process answers; nothing else is checked."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Answer ``{"status": "ok"}``."""
        resp.media = {"status": "ok"}


def run_check(check: ReadinessCheck) -> dict[str, Any]:
    """Run one probe and describe its outcome (the failure becomes the answer, not a raise)."""
    try:
        check.probe()
    # A readiness probe must report every failure as "not ready", whatever its type; the
    # error is neither swallowed nor retried: it is the answer (and it is logged).
    except Exception as error:  # noqa: BLE001
        _log.warning("readiness check failed", check=check.name, error=repr(error))
        return {"ok": False, "adapter": check.adapter, "error": f"{type(error).__name__}: {error}"}
    return {"ok": True, "adapter": check.adapter, "error": None}


class Readiness:
    """``GET /readyz``: 200 when every check passes, else 503.

    Args:
        checks: The dependencies to probe, in order.
        adapters: Labels of the configured adapters, shown as they are.
    """

    def __init__(self, checks: Sequence[ReadinessCheck], adapters: Mapping[str, str]) -> None:
        self._checks = tuple(checks)
        self._adapters = dict(adapters)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:  # noqa: ARG002
        """Probe every dependency and answer the outcome of each."""
        results = {check.name: run_check(check) for check in self._checks}
        ready = all(result["ok"] for result in results.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {
            "status": "ready" if ready else "unavailable",
            "checks": results,
            "adapters": self._adapters,
        }
