"""OpenAI-compatible analysis and embeddings (any endpoint speaking the OpenAI API).

Errors the SDK raises, and what they become::

    openai.OpenAIError
    ├── APIConnectionError ─┬─ APITimeoutError ........ TransientError
    │                       └─ (connection refused...) TransientError
    ├── APIStatusError
    │   ├── RateLimitError (429) ...................... TransientError
    │   ├── InternalServerError / any 5xx ............. TransientError
    │   └── 400, 401, 403, 404, 409, 422 .............. PermanentError
    └── a reply that does not validate ................ TransientError (the model may do
                                                        better on the next attempt)

The SDK's own retries (``max_retries``) and timeout come from ``OpenAISettings`` and are
kept small: they multiply with the actor's retries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ConfigDict, ValidationError

from contracts import CallAnalysis, CallbackRequest, Sentiment, TranscriptTurn
from contracts.errors import PermanentError, TransientError
from infra.settings import OpenAISettings
from infra.vendors.callback_times import zone_of

ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "Two or three sentences."},
        "topics": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Up to five short lowercase topic labels, most important first.",
        },
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "callback": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "due_at": {
                            "type": "string",
                            "description": "ISO 8601 date-time with UTC offset.",
                        },
                        "reason": {"type": "string"},
                    },
                    "required": ["due_at", "reason"],
                    "additionalProperties": False,
                },
                {"type": "null"},
            ]
        },
    },
    "required": ["summary", "topics", "sentiment", "callback"],
    "additionalProperties": False,
}
"""The strict Structured Outputs schema of one call analysis."""

SYSTEM_PROMPT = (
    "You analyze phone calls between an AI agent and a caller. Reply with JSON only, "
    "following the schema: a summary of two or three sentences; up to five short lowercase "
    "topics, most important first; the caller's overall sentiment; and callback: null unless "
    'the caller asked to be called back (a refusal such as "don\'t call me back" is not a '
    "request). For a callback, due_at is an ISO 8601 date-time with a UTC offset, resolved "
    "from what the caller said against the reference time in the caller's time zone; when "
    "no time was given, use 10:00 local time on the next day. reason quotes the caller's "
    "request."
)


class _Reply(BaseModel):
    # The reply summarises a call: a validation error must not echo it into logs.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    summary: str
    topics: list[str]
    sentiment: Sentiment
    callback: CallbackRequest | None


def build_openai_client(settings: OpenAISettings) -> openai.OpenAI:
    """Build the SDK client with explicit timeout and retries (never the SDK defaults).

    Raises:
        ValueError: No API key is configured.
    """
    if settings.api_key is None:
        raise ValueError("openai.api_key is not set")
    return openai.OpenAI(
        api_key=settings.api_key.get_secret_value(),
        base_url=settings.base_url,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
    )


def translate_openai_error(exc: openai.OpenAIError) -> NoReturn:
    """Raise the ``TransientError`` / ``PermanentError`` that ``exc`` stands for."""
    if isinstance(exc, openai.APIConnectionError | openai.RateLimitError):
        raise TransientError(f"OpenAI unavailable: {exc}") from exc
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            raise TransientError(f"OpenAI answered {exc.status_code}: {exc}") from exc
        raise PermanentError(f"OpenAI rejected the request ({exc.status_code}): {exc}") from exc
    if isinstance(exc, openai.APIResponseValidationError):
        raise TransientError(f"OpenAI reply did not validate: {exc}") from exc
    raise PermanentError(f"OpenAI client error: {exc}") from exc


def _retrieve_model(client: openai.OpenAI, model: str) -> None:
    try:
        client.models.retrieve(model)
    except openai.OpenAIError as exc:
        translate_openai_error(exc)


def render_transcript(transcript: Sequence[TranscriptTurn]) -> str:
    """The transcript as ``Agent: ...`` / ``Caller: ...`` lines."""
    names = {"agent": "Agent", "user": "Caller"}
    return "\n".join(f"{names[turn.role]}: {turn.message}" for turn in transcript)


class OpenAIAnalyzer:
    """Analysis in one Structured Outputs chat completion (strict JSON schema)."""

    vendor: str | None = "openai"
    """The vendor whose throttle applies."""

    def __init__(self, client: openai.OpenAI, model: str) -> None:
        self._client = client
        self._model = model

    @property
    def name(self) -> str:
        """``openai:<model>``."""
        return f"openai:{self._model}"

    def ping(self) -> None:
        """Check the key and the chat model (``models.retrieve``; no tokens are spent).

        Raises:
            TransientError: Timeout, connection failure, 429 or 5xx.
            PermanentError: A wrong key (401) or an unknown model (404).
        """
        _retrieve_model(self._client, self._model)

    def analyze(
        self, transcript: Sequence[TranscriptTurn], *, reference_time: datetime, timezone: str
    ) -> CallAnalysis:
        """Analyze a transcript with one chat completion.

        Raises:
            TransientError: Timeout, connection failure, 429, 5xx, or a reply that does
                not validate.
            PermanentError: Another 4xx, a refusal, or an unknown time zone.
        """
        local = reference_time.astimezone(zone_of(timezone))
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": (
                    f"Reference time: {local.isoformat()} (time zone {timezone}).\n"
                    f"Transcript:\n{render_transcript(transcript)}"
                ),
            },
        ]
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "strict": True, "schema": ANALYSIS_SCHEMA},
        }
        try:
            completion = self._client.chat.completions.create(
                model=self._model, messages=messages, response_format=response_format
            )
        except openai.OpenAIError as exc:
            translate_openai_error(exc)
        if not completion.choices:
            raise TransientError("OpenAI returned no choices")
        message = completion.choices[0].message
        if message.refusal:
            raise PermanentError(f"OpenAI refused to analyze the call: {message.refusal}")
        return self._parse(message.content)

    def _parse(self, content: str | None) -> CallAnalysis:
        try:
            reply = _Reply.model_validate(json.loads(content or ""))
        except (ValueError, ValidationError) as exc:
            raise TransientError(f"OpenAI reply is not a valid analysis: {exc}") from exc
        return CallAnalysis(
            summary=reply.summary,
            topics=[topic.lower() for topic in reply.topics][:5],
            sentiment=reply.sentiment,
            callback=reply.callback,
            analyzer=self.name,
        )


class OpenAIEmbedder:
    """Embeddings from ``embeddings.create`` at a fixed ``dimensions``."""

    vendor: str | None = "openai"
    """The vendor whose throttle applies."""

    def __init__(self, client: openai.OpenAI, model: str, dimensions: int) -> None:
        self._client = client
        self._model = model
        self._dimensions = dimensions

    @property
    def dimensions(self) -> int:
        """Length of every vector returned."""
        return self._dimensions

    @property
    def name(self) -> str:
        """``openai:<model>``."""
        return f"openai:{self._model}"

    def ping(self) -> None:
        """Check the key and the embedding model (``models.retrieve``; no tokens are spent).

        Raises:
            TransientError: Timeout, connection failure, 429 or 5xx.
            PermanentError: A wrong key (401) or an unknown model (404).
        """
        _retrieve_model(self._client, self._model)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts in one request, one vector per text, in order.

        Raises:
            TransientError: Timeout, connection failure, 429, 5xx, or a malformed reply.
            PermanentError: Another 4xx, or vectors of the wrong length.
        """
        if not texts:
            return []
        try:
            response = self._client.embeddings.create(
                model=self._model,
                input=list(texts),
                dimensions=self._dimensions,
                encoding_format="float",
            )
        except openai.OpenAIError as exc:
            translate_openai_error(exc)
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        if len(vectors) != len(texts):
            raise TransientError(f"OpenAI returned {len(vectors)} embeddings for {len(texts)}")
        if any(len(vector) != self._dimensions for vector in vectors):
            raise PermanentError(f"{self._model} did not return {self._dimensions} dimensions")
        return vectors
