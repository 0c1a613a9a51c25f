"""Outbound calls through CallKaro (the ``Telephony`` port).

``POST {base}/call/outbound`` with header ``X-API-KEY`` and the JSON body::

    {"to_number": "+919876543210", "agent_id": "...", "from_number": "+1...",
     "metadata": {"call_id": <our call id>, "tenant_id": ..., "attempt": ...,
                  "user_id": ..., "local_date": ... | "conversation_id": ...}}

answers ``200 {"status": "success", "message": ..., "call_id": "<provider id>"}``.
``from_number`` is sent only when a caller id is known. The provider's own options
(``schedule_at``, ``number_of_retries``, ``priority``) are never sent: retries are ours.
The metadata comes back in every status webhook, which is how an event finds its call.

Placing a call is not idempotent, so a failure is sorted by whether the request can
have reached the provider::

    httpx.RequestError
    ├── ConnectError, ConnectTimeout, PoolTimeout, ProxyError ... TransientError (not sent)
    ├── UnsupportedProtocol ..................................... PermanentError (bad URL)
    └── ReadTimeout, WriteTimeout, ReadError, WriteError,
        RemoteProtocolError, the rest ........................... OutcomeUnknown (sent)

    HTTP 429, 5xx ............................................... TransientError
    HTTP 3xx, other 4xx (400 bad body, 403 key, 404 agent) ...... PermanentError
    HTTP 2xx without a ``call_id`` (or not JSON) ................ OutcomeUnknown

``ping`` (readiness) never places a call: it sends an authenticated ``GET {base}/``
and counts any answer below 500 as reachable (the API documents no cheaper endpoint
that checks the key). The API key appears in no error message and no log line.
"""

from __future__ import annotations

from typing import Any

import httpx

from contracts.daily_calls import PlaceCall, PlaceCallbackJobData, PlaceUserCallJobData
from contracts.errors import OutcomeUnknown, PermanentError, TransientError
from infra.settings import CallKaroSettings

API_KEY_HEADER = "X-API-KEY"
OUTBOUND_PATH = "/call/outbound"
MESSAGE_LIMIT = 300
"""Longest provider message copied into an error."""

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


def call_metadata(command: PlaceCall) -> dict[str, Any]:
    """The metadata sent with a call, which the provider echoes in its status webhooks."""
    metadata: dict[str, Any] = {
        "call_id": command.call_id,
        "tenant_id": command.tenant_id,
        "attempt": command.attempt,
    }
    if isinstance(command, PlaceUserCallJobData):
        metadata["user_id"] = command.user_id
        metadata["local_date"] = command.local_date.isoformat()
    elif isinstance(command, PlaceCallbackJobData):
        metadata["conversation_id"] = command.conversation_id
    return metadata


def build_client(settings: CallKaroSettings) -> httpx.Client:
    """An HTTP client for the API: base URL, key header, timeout, no retries.

    Raises:
        ValueError: No API key is configured.
    """
    if settings.api_key is None:
        raise ValueError("callkaro.api_key is not set")
    return httpx.Client(
        base_url=settings.base_url,
        headers={API_KEY_HEADER: settings.api_key.get_secret_value()},
        timeout=settings.timeout_s,
    )


class CallKaroTelephony:
    """The CallKaro outbound-call API.

    Args:
        settings: The provider's settings (key, base URL, default agent and caller id).
        client: A client configured as ``build_client`` does (base URL and key header);
            by default one is built and owned, and ``close`` closes it.

    Raises:
        ValueError: No API key is configured and no client is given.
    """

    vendor: str | None = "callkaro"
    """The vendor whose throttle applies."""

    label = "callkaro"
    """How logs and readiness name this adapter."""

    def __init__(self, settings: CallKaroSettings, *, client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._owns_client = client is None
        self._client = client if client is not None else build_client(settings)
        self._api_key = settings.api_key.get_secret_value() if settings.api_key else ""

    def place(self, command: PlaceCall) -> str:
        """Ask CallKaro to call ``command.phone``; return its call id.

        Not idempotent: every successful request places a call.

        Raises:
            TransientError: The request did not reach CallKaro, or it answered 429/5xx.
            PermanentError: No agent is configured, or CallKaro refused (3xx/4xx).
            OutcomeUnknown: The request was sent but no usable answer came back.
        """
        try:
            response = self._client.post(OUTBOUND_PATH, json=self._body(command))
        except httpx.RequestError as exc:
            raise self._request_failure(exc, command.call_id) from exc
        status = response.status_code
        what = f"call {command.call_id}"
        if status == 429 or status >= 500:
            raise TransientError(f"CallKaro answered {status} for {what}")
        if status >= 300:
            detail = self._redact(_provider_message(response))
            raise PermanentError(f"CallKaro refused {what} ({status}): {detail}")
        provider_call_id = _call_id(response)
        if provider_call_id is None:
            detail = self._redact(_provider_message(response))
            raise OutcomeUnknown(
                f"CallKaro answered {status} without a call_id for {what}: {detail}"
            )
        return provider_call_id

    def ping(self) -> None:
        """Check that the API answers, without placing a call (``GET /`` with the key).

        Raises:
            TransientError: CallKaro could not be reached, timed out or answered 5xx.
        """
        try:
            response = self._client.get("/")
        except httpx.RequestError as exc:
            raise TransientError(self._redact(f"CallKaro unreachable: {exc!r}")) from exc
        if response.status_code >= 500:
            raise TransientError(f"CallKaro answered {response.status_code} to a ping")

    def close(self) -> None:
        """Close the HTTP client, when this adapter built it."""
        if self._owns_client:
            self._client.close()

    def _body(self, command: PlaceCall) -> dict[str, Any]:
        agent = command.agent_id or self._settings.agent_id
        if not agent:
            raise PermanentError(
                f"no voice agent for call {command.call_id}: set SWITCHBOARD_CALLKARO__AGENT_ID"
                " (or CALLKARO_AGENT_ID), or the tenant's agent"
            )
        body: dict[str, Any] = {
            "to_number": command.phone,
            "agent_id": agent,
            "metadata": call_metadata(command),
        }
        caller_id = command.caller_id or self._settings.caller_id
        if caller_id:
            body["from_number"] = caller_id
        return body

    def _request_failure(self, exc: httpx.RequestError, call_id: str) -> Exception:
        detail = self._redact(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, _NOT_SENT):
            return TransientError(f"CallKaro unreachable for call {call_id}: {detail}")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return PermanentError(f"CallKaro base_url is not http(s): {detail}")
        return OutcomeUnknown(f"no answer from CallKaro for call {call_id}: {detail}")

    def _redact(self, text: str) -> str:
        # Transport errors can quote a header value (h11's "Illegal header value ...").
        return text.replace(self._api_key, "***") if self._api_key else text


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _call_id(response: httpx.Response) -> str | None:
    body = _json(response)
    call_id = body.get("call_id") if isinstance(body, dict) else None
    return call_id if isinstance(call_id, str) and call_id.strip() else None


def _provider_message(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:MESSAGE_LIMIT]
    return response.text[:MESSAGE_LIMIT] or "(empty body)"
