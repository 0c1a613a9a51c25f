"""A local OpenAI-compatible server: chat completions (structured outputs) and embeddings.

- ``POST /v1/chat/completions`` checks the bearer key and the strict ``json_schema``
  response format, reads the reference time, zone and ``Agent:``/``Caller:`` lines from
  the prompt, and answers the local analyzer's analysis of them as the JSON content:
  deterministic and schema-valid, so contract suites can assert the same behaviour of
  the local and the OpenAI analyzer.
- ``POST /v1/embeddings`` answers hashing-embedder vectors of the requested dimension.
- ``GET /v1/models/{id}`` answers the model (any id: the stand-in serves every model).

Script failures with ``fail_next`` and bad content with ``next_content``.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime
from typing import Any

from contracts import TranscriptTurn
from infra.vendors.local_analyzer import LocalAnalyzer
from infra.vendors.local_embedder import HashingEmbedder
from tests.standins.server_base import Reply, Request, StandInServer

_REFERENCE = re.compile(r"Reference time: (\S+) \(time zone ([^)]+)\)")
_ROLES = {"Agent": "agent", "Caller": "user"}
_MODELS = "/v1/models/"


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "invalid_request"}})


class OpenAIStandIn(StandInServer):
    """The stand-in; ``base_url`` is what ``OpenAISettings.base_url`` should be."""

    def __init__(self, api_key: str = "sk-test") -> None:
        super().__init__()
        self.api_key = api_key
        self._contents: deque[str] = deque()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``<url>/v1``)."""
        return f"{self.url}/v1"

    def next_content(self, content: str) -> None:
        """Answer the next chat completion with this message content instead."""
        self._contents.append(content)

    def handle(self, request: Request) -> Reply:
        """Route to the three endpoints."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided")
        if request.method == "POST" and request.path == "/v1/chat/completions":
            return self._chat(request.json())
        if request.method == "POST" and request.path == "/v1/embeddings":
            return self._embeddings(request.json())
        if request.method == "GET" and request.path.startswith(_MODELS):
            return self._model(request.path.removeprefix(_MODELS))
        return _error(404, f"no route {request.method} {request.path}")

    def _chat(self, body: dict[str, Any]) -> Reply:
        response_format = body.get("response_format") or {}
        schema = response_format.get("json_schema") or {}
        if response_format.get("type") != "json_schema" or schema.get("strict") is not True:
            return _error(400, "response_format must be a strict json_schema")
        prompt = "\n".join(str(m.get("content") or "") for m in body.get("messages", []))
        reference = _REFERENCE.search(prompt)
        if reference is None:
            return _error(400, "the prompt states no reference time")
        content = self._contents.popleft() if self._contents else self._analyze(prompt, reference)
        return Reply(
            body={
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": 1_767_225_600,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )

    @staticmethod
    def _analyze(prompt: str, reference: re.Match[str]) -> str:
        turns = [
            TranscriptTurn(role=_ROLES[name], message=message)
            for name, message in re.findall(r"^(Agent|Caller): (.*)$", prompt, re.MULTILINE)
        ]
        analysis = LocalAnalyzer().analyze(
            turns,
            reference_time=datetime.fromisoformat(reference.group(1)),
            timezone=reference.group(2),
        )
        return analysis.model_dump_json(include={"summary", "topics", "sentiment", "callback"})

    @staticmethod
    def _model(model: str) -> Reply:
        if not model:
            return _error(404, "no model id")
        return Reply(
            body={"id": model, "object": "model", "created": 1_767_225_600, "owned_by": "standin"}
        )

    @staticmethod
    def _embeddings(body: dict[str, Any]) -> Reply:
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dimensions = int(body.get("dimensions") or 1536)
        vectors = HashingEmbedder(dimensions).embed(texts)
        return Reply(
            body={
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": vector}
                    for i, vector in enumerate(vectors)
                ],
                "model": body.get("model"),
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
            }
        )
