"""RFC 9457 problem details for every error the API answers.

::

    falcon.HTTPError            kept: status, title, description → detail
    ├── ProblemError            adds extension members (e.g. ``errors`` on a 422)
    pydantic.ValidationError    422 with one ``errors`` entry per invalid field
    contracts TransientError    503 with ``Retry-After`` (the store or broker is unreachable)
    IdempotencyKeyReused        422 naming the ``Idempotency-Key`` header
    any other exception         500, logged with its traceback, no internals in the body

Unknown routes and wrong methods are ``falcon.HTTPError`` too, so they get the same
``application/problem+json`` body. Responders never catch; they raise and these
handlers answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import falcon
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import TransientError
from infra.intake import IdempotencyKeyReused
from infra.logs import get_logger

PROBLEM_JSON = "application/problem+json"

_log = get_logger(__name__)


class ProblemError(falcon.HTTPError):
    """An HTTP error whose problem document carries extension members.

    Args:
        status: The HTTP status (e.g. ``falcon.HTTP_422``).
        title: A short, stable summary of the problem type.
        detail: What went wrong with this request.
        extensions: Extra members of the problem document (e.g. ``errors``).
        headers: Extra response headers.
    """

    def __init__(
        self,
        status: str,
        *,
        title: str,
        detail: str,
        extensions: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, title=title, description=detail, headers=headers)
        self.extensions: dict[str, Any] = dict(extensions or {})


def unprocessable(detail: str, *, field: str | None = None) -> ProblemError:
    """A 422 problem; with ``field``, ``errors`` names it and the detail is its message."""
    errors = [{"field": field, "message": detail}] if field is not None else []
    return ProblemError(
        falcon.HTTP_422,
        title="Unprocessable Content",
        detail=f"invalid field {field}: {detail}" if field is not None else detail,
        extensions={"errors": errors},
    )


class FieldProblem(BaseModel):
    """One invalid field, header or parameter of a request."""

    field: str = Field(
        description="Where, as the sender wrote it: `data.transcript.3.message`, "
        "`Idempotency-Key`, `limit`; `body` for the body as a whole."
    )
    message: str = Field(description="What is wrong with it.")


def _optional_members(schema: dict[str, Any]) -> None:
    # Members a problem may lack are absent, never null.
    for member in schema.get("properties", {}).values():
        if member.pop("default", ...) is None:
            [present] = [s for s in member.pop("anyOf") if s != {"type": "null"}]
            member.update(present)


class Problem(BaseModel):
    """An RFC 9457 problem document, sent as ``application/problem+json`` with every error.

    Only the API's documentation uses it: ``problem_document`` builds what is sent.

    Extension members: ``errors`` (on a 422, and on a 409 for a payload its contract
    refuses), ``tenants`` (a 409 for a call id several tenants have), ``job_id`` (a 429:
    the tick triggered last).
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_optional_members)

    type: str = Field(description="Always `about:blank`: the status says what happened.")
    title: str = Field(description="A short, stable summary of the problem.")
    status: int = Field(description="The HTTP status.")
    instance: str | None = Field(
        default=None,
        description="The request's path, without its query string. Absent from a refusal "
        "of the edge in front of the API that came before the path was known (a head that "
        "is malformed, too large or never arrives whole) and from gunicorn's own (414, 431).",
    )
    detail: str | None = Field(default=None, description="What went wrong, and what to do.")
    errors: list[FieldProblem] | None = Field(default=None, description="Every invalid field.")
    tenants: list[str] | None = Field(default=None, description="The tenants with this call.")
    job_id: str | None = Field(default=None, description="The job of the tick triggered last.")


def problem_document(req: falcon.Request, error: falcon.HTTPError) -> dict[str, Any]:
    """The RFC 9457 document of an HTTP error."""
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status_code,
        "instance": req.path,
    }
    if error.description is not None:
        document["detail"] = error.description
    if isinstance(error, ProblemError):
        document.update(error.extensions)
    return document


def serialize_problem(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon error serializer: always ``application/problem+json``, whatever ``Accept`` says."""
    resp.content_type = PROBLEM_JSON
    resp.data = json.dumps(problem_document(req, error)).encode()


def handle_validation_error(
    req: falcon.Request,  # noqa: ARG001 (falcon's error-handler signature)
    resp: falcon.Response,  # noqa: ARG001
    error: pydantic.ValidationError,
    params: dict[str, Any],  # noqa: ARG001
) -> None:
    """Answer a pydantic validation error with a 422 naming every invalid field.

    Raises:
        ProblemError: Always; falcon serializes it.
    """
    raise invalid_fields(error) from error


_TYPE_MESSAGES = {
    "missing": "is required",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}


_SHAPE_ERRORS = frozenset(
    {"model_type", "model_attributes_type", "dict_type", "list_type", "string_type"}
)
"""Errors about the kind of value (object, array, string) rather than its content."""


def invalid_fields(
    error: pydantic.ValidationError, document: Any = None, *, at: str = ""
) -> ProblemError:
    """The 422 problem of a validation error, by the sender's paths, in plain words.

    Args:
        error: The validation error.
        document: The JSON the sender sent, to find its paths in (see
            ``sender_path``); None keeps pydantic's locations.
        at: The path of ``document`` within the body, prefixed to every field.
    """
    messages: dict[str, list[str]] = {}
    shape_only: dict[str, bool] = {}
    for item in error.errors(include_input=False, include_url=False):
        loc = item["loc"]
        path = sender_path(document, loc, item["type"]) if document is not None else _joined(loc)
        field = ".".join(p for p in (at, path) if p) or "body"
        text = _TYPE_MESSAGES.get(item["type"], item["msg"])
        if text not in messages.setdefault(field, []):
            messages[field].append(text)
        shape_only[field] = shape_only.get(field, True) and item["type"] in _SHAPE_ERRORS
    # A union's other members fail on the shape of a value whose real problem lies
    # deeper (a bad turn in a transcript array is also "not the older object shape"):
    # keep the deeper, precise entries only.
    errors = [
        {"field": f, "message": " or ".join(texts)}
        for f, texts in messages.items()
        if not (shape_only[f] and any(other.startswith(f"{f}.") for other in messages))
    ]
    first = errors[0] if errors else {"field": "body", "message": "is invalid"}
    return ProblemError(
        falcon.HTTP_422,
        title="Unprocessable Content",
        detail=f"invalid field {first['field']}: {first['message']}",
        extensions={"errors": errors},
    )


def _joined(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def sender_path(document: Any, loc: tuple[int | str, ...], error_type: str) -> str:
    """``loc`` as the sender wrote it: only the keys and indexes found in ``document``.

    pydantic's locations also name union members and validators
    (``data.transcript.list[WebhookTurn].0.role``), which the sender never wrote. A
    missing field is not in the document but is the sender's to add, so the last
    segment of a ``missing`` error is kept.
    """
    node, parts = document, []
    for index, segment in enumerate(loc):
        if isinstance(node, dict) and isinstance(segment, str) and segment in node:
            node = node[segment]
            parts.append(segment)
        elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
            parts.append(str(segment))
        elif index == len(loc) - 1 and error_type == "missing":
            parts.append(str(segment))
    return ".".join(parts)


def handle_idempotency_key_reused(
    req: falcon.Request,  # noqa: ARG001 (falcon's error-handler signature)
    resp: falcon.Response,  # noqa: ARG001
    error: IdempotencyKeyReused,
    params: dict[str, Any],  # noqa: ARG001
) -> None:
    """Answer a reused ``Idempotency-Key`` with another body: 422 naming the header.

    Raises:
        ProblemError: Always.
    """
    raise unprocessable(
        f"{error}: send a new key for a new request", field="Idempotency-Key"
    ) from error


RETRY_AFTER_S = 5


def handle_transient_error(
    req: falcon.Request,
    resp: falcon.Response,  # noqa: ARG001 (falcon's error-handler signature)
    error: TransientError,
    params: dict[str, Any],  # noqa: ARG001
) -> None:
    """Answer a dependency outage (database, broker) with a 503 the client may retry.

    Raises:
        falcon.HTTPServiceUnavailable: Always; the body names the outage, not its details.
    """
    _log.warning("dependency unavailable", method=req.method, path=req.path, error=str(error))
    raise falcon.HTTPServiceUnavailable(
        title="Service Unavailable",
        description="a dependency of the API is unavailable; retry later",
        retry_after=RETRY_AFTER_S,
    ) from error


def handle_unexpected_error(
    req: falcon.Request,
    resp: falcon.Response,  # noqa: ARG001 (falcon's error-handler signature)
    error: Exception,
    params: dict[str, Any],  # noqa: ARG001
) -> None:
    """Log an unexpected exception with its traceback and answer a bare 500 problem.

    Raises:
        falcon.HTTPInternalServerError: Always; the body names no internals.
    """
    _log.error(
        "unhandled error",
        method=req.method,
        path=req.path,
        error_type=type(error).__name__,
        exc_info=error,
    )
    raise falcon.HTTPInternalServerError(
        description="an unexpected error occurred; it has been logged"
    ) from error


def install_error_handling(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Route every error of ``app`` through the problem+json handlers.

    The default ``HTTPError`` handler is kept on purpose: a custom one would bypass the
    serializer. Handlers are looked up by the exception's MRO, so ``HTTPError`` (and
    its subclasses) never reach the catch-all ``Exception`` handler.
    """
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(pydantic.ValidationError, handle_validation_error)
    app.add_error_handler(TransientError, handle_transient_error)
    app.add_error_handler(IdempotencyKeyReused, handle_idempotency_key_reused)
    app.add_error_handler(Exception, handle_unexpected_error)
