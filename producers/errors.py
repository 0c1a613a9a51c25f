"""RFC 9457 problem details for every error the API answers.

::

    falcon.HTTPError            kept: status, title, description → detail
    ├── ProblemError            adds extension members (e.g. ``errors`` on a 422)
    pydantic.ValidationError    422 with one ``errors`` entry per invalid field
    contracts TransientError    503 with ``Retry-After`` (the store or broker is unreachable)
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

from contracts.errors import TransientError
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
    """A 422 problem, naming the offending field in ``errors`` when there is one."""
    errors = [{"field": field, "message": detail}] if field is not None else []
    return ProblemError(
        falcon.HTTP_422,
        title="Unprocessable Content",
        detail=detail,
        extensions={"errors": errors},
    )


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


def _field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


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
    errors = [
        {"field": _field_path(item["loc"]), "message": item["msg"]} for item in error.errors()
    ]
    first = errors[0]["field"] if errors else "body"
    raise ProblemError(
        falcon.HTTP_422,
        title="Unprocessable Content",
        detail=f"invalid field {first}: {errors[0]['message'] if errors else 'invalid body'}",
        extensions={"errors": errors},
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
    app.add_error_handler(Exception, handle_unexpected_error)
