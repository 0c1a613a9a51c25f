"""A local stand-in of ElevenLabs' conversation API.

``GET /v1/convai/conversations/{id}`` with the ``xi-api-key`` header answers the
conversation's JSON; ``add_conversation(..., processing_polls=N)`` makes it answer
``status: processing`` (without transcript) N times before ``done``.
``GET /v1/convai/conversations`` lists the conversations (summaries, ``page_size`` of
them). Unknown ids get 404 and a wrong key 401, as the real API does.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.standins.server_base import Reply, Request, StandInServer

_PREFIX = "/v1/convai/conversations/"


def conversation_body(
    conversation_id: str,
    turns: list[tuple[str, str | None]],
    *,
    status: str = "done",
    duration_secs: int = 42,
) -> dict[str, Any]:
    """A conversation in the API's JSON shape; a ``None`` message is a tool turn."""
    return {
        "agent_id": "agent-standin",
        "conversation_id": conversation_id,
        "status": status,
        "transcript": [
            {
                "role": role,
                "message": message,
                "time_in_call_secs": index * 5,
                "tool_calls": [] if message else [{"tool_name": "lookup"}],
            }
            for index, (role, message) in enumerate(turns)
        ],
        "metadata": {"start_time_unix_secs": 1_767_225_600, "call_duration_secs": duration_secs},
    }


class ElevenLabsStandIn(StandInServer):
    """The stand-in; ``url`` is what ``ElevenLabsSettings.base_url`` should be."""

    def __init__(self, api_key: str = "xi-test") -> None:
        super().__init__()
        self.api_key = api_key
        self.conversations: dict[str, dict[str, Any]] = {}
        self._processing: dict[str, int] = {}
        self._data_lock = threading.Lock()

    def add_conversation(self, body: dict[str, Any], *, processing_polls: int = 0) -> None:
        """Serve ``body``; the first ``processing_polls`` fetches say ``processing``."""
        with self._data_lock:
            self.conversations[body["conversation_id"]] = body
            self._processing[body["conversation_id"]] = processing_polls

    def handle(self, request: Request) -> Reply:
        """Answer one conversation fetch or the conversation list."""
        if request.headers.get("xi-api-key") != self.api_key:
            return Reply(status=401, body={"detail": {"status": "invalid_api_key"}})
        if request.method == "GET" and request.path == _PREFIX.rstrip("/"):
            return self._list(request)
        if request.method != "GET" or not request.path.startswith(_PREFIX):
            return Reply(status=404, body={"detail": "Not Found"})
        conversation_id = request.path.removeprefix(_PREFIX)
        with self._data_lock:
            body = self.conversations.get(conversation_id)
            if body is None:
                return Reply(status=404, body={"detail": {"status": "conversation_not_found"}})
            if self._processing.get(conversation_id, 0) > 0:
                self._processing[conversation_id] -= 1
                return Reply(body={**body, "status": "processing", "transcript": []})
        return Reply(body=body)

    def _list(self, request: Request) -> Reply:
        page_size = int((request.query.get("page_size") or ["30"])[0])
        with self._data_lock:
            bodies = list(self.conversations.values())
        summaries = [
            {
                "agent_id": body.get("agent_id"),
                "conversation_id": body["conversation_id"],
                "status": body.get("status"),
            }
            for body in bodies[:page_size]
        ]
        return Reply(
            body={
                "conversations": summaries,
                "has_more": len(bodies) > page_size,
                "next_cursor": None,
            }
        )
