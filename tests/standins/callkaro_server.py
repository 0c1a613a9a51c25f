"""A local stand-in of CallKaro's outbound-call API.

``POST /call/outbound`` with the ``X-API-KEY`` header and ``{"to_number", "agent_id",
"from_number"?, "metadata"?}`` answers ``200 {"status": "success", "message": "Call
initiated successfully", "call_id": "<10 hex>"}`` and records the call in ``calls``.
As the real API does, a missing or wrong key gets 403, a body without ``agent_id`` or
``to_number`` (or not E.164) 400, an agent it does not know 404, all as
``{"status": "error", "message": ...}``. Any other path gets 404 (``GET /`` included,
with the key checked first), which is what a readiness ping sees.

Script failures with ``refuse_next`` (a status and message), ``hang_next`` (no answer
before the client's timeout) and ``answer_without_call_id``.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from tests.standins.server_base import Reply, Request, StandInServer

OUTBOUND_PATH = "/call/outbound"
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, body={"status": "error", "message": message})


class CallKaroStandIn(StandInServer):
    """The stand-in; ``url`` is what ``CallKaroSettings.base_url`` should be.

    Args:
        api_key: The key it accepts.
        agents: The voice agents that exist.
    """

    def __init__(
        self, api_key: str = "ck-test", agents: frozenset[str] = frozenset({"agent-default"})
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.agents = set(agents)
        self.calls: dict[str, dict[str, Any]] = {}
        self._calls_lock = threading.Lock()

    def refuse_next(self, status: int, message: str, *, times: int = 1) -> None:
        """Answer the next ``times`` placements with ``status`` and this message."""
        body = {"status": "error", "message": message}
        self.fail_next(status, times=times, path_prefix=OUTBOUND_PATH, body=body)

    def hang_next(self, delay_s: float = 5.0) -> None:
        """Hold the next placement's (successful-looking) answer back for ``delay_s``."""
        body = {"status": "success", "call_id": "never-seen"}
        self.fail_next(200, path_prefix=OUTBOUND_PATH, body=body, delay_s=delay_s)

    def answer_without_call_id(self) -> None:
        """Answer the next placement 200 with no ``call_id``."""
        body = {"status": "success", "message": "Call initiated successfully"}
        self.fail_next(200, path_prefix=OUTBOUND_PATH, body=body)

    def handle(self, request: Request) -> Reply:
        """Check the key, then place a call or answer 404."""
        key = request.headers.get("x-api-key")
        if not key:
            return _error(403, "Missing API key")
        if key != self.api_key:
            return _error(403, "Invalid API key")
        if request.method == "POST" and request.path == OUTBOUND_PATH:
            return self._place(request)
        return Reply(status=404, body={"detail": "Not Found"})

    def _place(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, "Invalid JSON body")
        problem = _problem(body)
        if problem is not None:
            return _error(400, problem)
        if body["agent_id"] not in self.agents:
            return _error(404, f"Agent {body['agent_id']} not found")
        call_id = secrets.token_hex(5)
        with self._calls_lock:
            self.calls[call_id] = body
        return Reply(
            body={"status": "success", "message": "Call initiated successfully", "call_id": call_id}
        )


def _problem(body: dict[str, Any]) -> str | None:
    """What is wrong with a placement body, as the API words it."""
    if not body.get("agent_id") or not isinstance(body["agent_id"], str):
        return "Missing agent_id"
    to_number = body.get("to_number")
    if not to_number:
        return "Missing to_number"
    if not isinstance(to_number, str) or not _E164.match(to_number):
        return "to_number must be in E.164 format"
    from_number = body.get("from_number")
    if from_number is not None and (
        not isinstance(from_number, str) or not _E164.match(from_number)
    ):
        return "from_number must be in E.164 format"
    if not isinstance(body.get("metadata", {}), dict):
        return "metadata must be an object"
    return None
