"""Conversations from ElevenLabs (the ``TranscriptSource`` port), and a local archive.

``GET {base}/v1/convai/conversations/{id}`` with header ``xi-api-key`` answers::

    {"conversation_id": "...", "status": "initiated" | "in-progress" | "processing"
     | "done" | "failed", "transcript": [{"role": "agent" | "user", "message": str | null,
     "time_in_call_secs": float, ...}], "metadata": {"call_duration_secs": int, ...}}

Turns whose message is null (tool calls and results) are skipped. Errors: status
``failed``, 401/403/404 and other 4xx → ``PermanentError``; 429, 5xx, timeouts and
transport failures → ``TransientError``. The local archive reads the same JSON from
``<directory>/<id>.json``; a missing file is ``NotReadyError`` (written later, like a
conversation still processing). ``ping`` (readiness) lists one conversation,
``GET {base}/v1/convai/conversations?page_size=1``, which checks the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from contracts import TranscriptTurn
from contracts.errors import NotReadyError, PermanentError, TransientError
from contracts.fields import is_identifier
from contracts.values import ConversationSnapshot
from infra.settings import ElevenLabsSettings


def parse_conversation(conversation_id: str, body: Any) -> ConversationSnapshot:
    """Map the API's conversation JSON to a snapshot.

    Raises:
        PermanentError: The conversation failed on the platform.
        TransientError: The JSON is not a conversation (a proxy's error page...).
    """
    if not isinstance(body, dict):
        raise TransientError(f"conversation {conversation_id}: unexpected reply shape")
    status = str(body.get("status") or "")
    if status == "failed":
        raise PermanentError(f"conversation {conversation_id} failed on the platform")
    metadata = body.get("metadata") or {}
    try:
        turns = [
            TranscriptTurn.model_validate(turn)
            for turn in body.get("transcript") or []
            if isinstance(turn, dict) and turn.get("message")
        ]
        duration = metadata.get("call_duration_secs") if isinstance(metadata, dict) else None
        return ConversationSnapshot(
            conversation_id=str(body.get("conversation_id") or conversation_id),
            status=status,
            transcript=turns,
            duration_secs=int(duration) if duration is not None else None,
        )
    except (ValidationError, TypeError, ValueError) as exc:
        raise TransientError(f"conversation {conversation_id}: malformed reply: {exc}") from exc


def _checked_id(conversation_id: str) -> str:
    # Ids go into a URL path and a file name. Every id a contract accepts must pass
    # (or intake would accept a call this step can never fetch); no such id holds a
    # "/", and the only path segments that could traverse are "." and "..".
    if not is_identifier(conversation_id):
        raise PermanentError(f"invalid conversation id {conversation_id!r}")
    return conversation_id


class ElevenLabsConversations:
    """The ElevenLabs Conversational AI API, over an ``httpx.Client`` you own."""

    vendor: str | None = "elevenlabs"
    """The vendor whose throttle applies."""

    def __init__(self, client: httpx.Client, *, api_key: str, base_url: str) -> None:
        self._client = client
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: ElevenLabsSettings) -> ElevenLabsConversations:
        """Build with a new client using ``settings.timeout_s``; call ``close`` when done.

        Raises:
            ValueError: No API key is configured.
        """
        if settings.api_key is None:
            raise ValueError("elevenlabs.api_key is not set")
        client = httpx.Client(timeout=settings.timeout_s)
        return cls(client, api_key=settings.api_key.get_secret_value(), base_url=settings.base_url)

    def fetch(self, conversation_id: str) -> ConversationSnapshot:
        """Return the conversation as it is now; ``status`` says whether it is done.

        Raises:
            PermanentError: Unknown conversation, access denied, or a failed conversation.
            TransientError: Timeout, transport failure, 429 or 5xx.
        """
        path = f"/v1/convai/conversations/{_checked_id(conversation_id)}"
        response = self._get(path, what=conversation_id)
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"ElevenLabs reply is not JSON: {exc}") from exc
        return parse_conversation(conversation_id, body)

    def ping(self) -> None:
        """Check the key and the API answer (list one conversation).

        Raises:
            PermanentError: The key is wrong (401) or lacks access (403).
            TransientError: Timeout, transport failure, 429 or 5xx.
        """
        self._get("/v1/convai/conversations", what="the conversation list", page_size=1)

    def _get(self, path: str, *, what: str, **params: int) -> httpx.Response:
        try:
            response = self._client.get(
                f"{self._base_url}{path}", params=params, headers={"xi-api-key": self._api_key}
            )
        except httpx.TransportError as exc:
            raise TransientError(f"ElevenLabs unreachable: {exc!r}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(f"ElevenLabs answered {status} for {what}")
        if status >= 400:
            raise PermanentError(f"ElevenLabs answered {status} for {what}")
        return response

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class LocalConversationArchive:
    """Conversations as JSON files in a directory, in the API's shape."""

    vendor: str | None = None
    """A local adapter: no vendor, no throttle."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        """Where the ``<id>.json`` files are read from."""
        return self._directory

    def fetch(self, conversation_id: str) -> ConversationSnapshot:
        """Return the archived conversation.

        Raises:
            NotReadyError: The file is not there yet.
            PermanentError: The conversation failed.
            TransientError: The file is not valid JSON (possibly still being written).
        """
        path = self._directory / f"{_checked_id(conversation_id)}.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise NotReadyError(f"conversation {conversation_id} is not archived yet") from exc
        try:
            body = json.loads(text)
        except ValueError as exc:
            # A writer that is not atomic leaves a half-written file for a moment: retry.
            raise TransientError(f"{path} is not valid JSON (yet): {exc}") from exc
        return parse_conversation(conversation_id, body)
