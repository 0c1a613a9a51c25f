"""Reading a request body as JSON a pipeline can carry, with errors the sender can act on.

A correctly signed body can still be hostile. ``parse_document`` refuses, with a 422
naming the place (a path as the sender wrote it, e.g. ``data.transcript.3.message``):

- anything that is not a JSON object, and ``NaN``/``Infinity`` (not JSON);
- nesting deeper than ``max_depth`` (Python's parser would raise ``RecursionError``
  near 1,000 levels; we stop at 64);
- integers outside 64 bits (no database column holds them);
- strings, keys included, with NUL (PostgreSQL refuses it) or lone surrogates (no UTF-8
  encoding exists for them).

````validate`` then validates the document into a pydantic model and reports every
invalid field by the sender's path (``producers.errors.invalid_fields``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, TypeVar

import pydantic

from contracts.fields import storable_text
from infra.store.audit import MAX_REASON_CHARS
from producers.errors import ProblemError, invalid_fields, unprocessable

M = TypeVar("M", bound=pydantic.BaseModel)

INT64 = 2**63
"""Integers must lie in [-2^63, 2^63)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body_problem(message: str) -> ProblemError:
    """A 422 about the body as a whole: ``errors`` names ``body``, the detail says it."""
    problem = unprocessable(f"body {message}")
    problem.extensions["errors"] = [{"field": "body", "message": message}]
    return problem


def parse_document(body: bytes, *, max_depth: int) -> dict[str, Any]:
    """Decode ``body`` into a JSON object every store can hold.

    Raises:
        ProblemError: 422 naming what is wrong and where.
    """
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError as error:
        raise _body_problem(f"is JSON nested more than {max_depth} levels deep") from error
    except ValueError as error:
        # UnicodeDecodeError and over-long integer literals are ValueErrors too.
        reason = "a number has too many digits" if "digits" in str(error) else str(error)
        raise _body_problem(f"is not valid JSON: {reason}") from error
    if not isinstance(document, dict):
        raise _body_problem("must be a JSON object")
    for path, depth, value in _walk(document):
        problem = _problem(value, depth, max_depth)
        if problem is not None:
            raise unprocessable(problem, field=path or "body")
    return document


def _walk(document: dict[str, Any]) -> Iterator[tuple[str, int, Any]]:
    """Every key and value with its path and depth, without recursion."""
    stack: list[tuple[str, int, Any]] = [("", 1, document)]
    while stack:
        path, depth, node = stack.pop()
        yield path, depth, node
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                yield child, depth, key
                stack.append((child, depth + 1, value))
        elif isinstance(node, list):
            stack.extend(
                (f"{path}.{i}" if path else str(i), depth + 1, item) for i, item in enumerate(node)
            )


def _problem(value: Any, depth: int, max_depth: int) -> str | None:
    if isinstance(value, dict | list) and depth > max_depth:
        return f"is nested more than {max_depth} levels deep"
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not -INT64 <= value < INT64:
        return "is a number out of range (integers must fit in 64 bits)"
    if isinstance(value, float) and not math.isfinite(value):
        # 1e999 parses as infinity, which JSON cannot carry on: refused like Infinity.
        return "is a number out of range (too large for a double)"
    if isinstance(value, str):
        try:
            storable_text(value)
        except ValueError as error:
            return str(error)
    return None


def validate(model: type[M], document: dict[str, Any], *, at: str = "") -> M:
    """Validate ``document`` (found at path ``at`` of the body) into ``model``.

    Raises:
        ProblemError: 422 with one entry per invalid field, by the sender's path.
    """
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as error:
        raise invalid_fields(error, document, at=at) from error


def is_storable(value: str) -> bool:
    """Whether every store can hold ``value`` as text (no NUL, no lone surrogate)."""
    try:
        storable_text(value)
    except ValueError:
        return False
    return True


def reason_of(document: dict[str, Any]) -> str:
    """The ``reason`` of a change's body, for the audit log.

    Raises:
        ProblemError: 422 naming ``reason`` when it is missing, blank or too long.
    """
    reason = document.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise unprocessable("say why, for the audit log", field="reason")
    if len(reason.strip()) > MAX_REASON_CHARS:
        raise unprocessable(f"at most {MAX_REASON_CHARS} characters", field="reason")
    return reason.strip()
