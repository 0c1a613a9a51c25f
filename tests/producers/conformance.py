"""A test client that checks every answer of the API against its own OpenAPI document.

``ConformingClient`` is the producer tests' client: each answer of a documented operation
must have a status the operation lists (a status the document leaves to ``default``
must be a 5xx), a content type it lists for that status, and a body that validates
against that schema (OpenAPI 3.1's JSON Schema dialect, formats checked); an answer
documented without content (every answer to ``HEAD``) must have no body. So every test of the API
also checks that ``GET /openapi.json`` describes what the API sends. Requests outside
the document (the console, unknown paths, a method falcon answers itself) are not
checked. ``problem_violations`` checks a problem document made outside Falcon (by the
edge, by gunicorn) against the same document's ``Problem`` schema.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import falcon
from falcon import testing
from openapi_schema_validator import OAS31Validator, oas31_format_checker

from producers.openapi import OPENAPI_PATH, OpenApiResource, Route, openapi_document


@dataclass(frozen=True)
class Checked:
    """The operation and documented answer a result was checked against."""

    template: str
    method: str
    status: str
    content_type: str


class ConformingClient(testing.TestClient):
    """A ``falcon.testing.TestClient`` that checks each answer against the document."""

    checked: list[Checked]

    def __init__(self, app: falcon.App[falcon.Request, falcon.Response], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.checked = []

    def simulate_request(
        self, method: str = "GET", path: str = "/", *args: Any, **kwargs: Any
    ) -> testing.Result:
        """Simulate the request, then check its answer (see the module docstring)."""
        result = super().simulate_request(method, path, *args, **kwargs)
        document = testing.simulate_get(self.app, OPENAPI_PATH).content
        checked = conform(document, method, urlsplit(path).path, result)
        if checked is not None:
            self.checked.append(checked)
        return result


def conform(document: bytes, method: str, path: str, result: testing.Result) -> Checked | None:
    """Assert ``result`` is an answer ``document`` allows for ``method path``.

    Returns:
        What it was checked against; None when the document does not describe the
        request.
    """
    spec = _spec(document)
    template = spec.template_of(path)
    operation = spec.paths.get(template or "", {}).get(method.lower())
    if template is None or operation is None:
        return None
    status = str(result.status_code)
    responses: Mapping[str, Any] = operation["responses"]
    if status not in responses:
        assert result.status_code >= 500, (
            f"{method} {template} answered {status}, which its document does not list: "
            f"{result.text}"
        )
        status = "default"
    content_type = (result.headers.get("content-type") or "").split(";")[0].strip()
    content: Mapping[str, Any] = responses[status].get("content", {})
    if not content:  # documented without a body (every answer to HEAD): none was sent
        assert result.content == b"", f"{method} {template} {status} sent a body: {result.text}"
        return Checked(template, method.upper(), status, "")
    assert content_type in content, (
        f"{method} {template} answered {status} as {content_type!r}, documented as "
        f"{sorted(content)}"
    )
    errors = _violations(spec.validator(template, method, status, content_type), result.json)
    assert not errors, f"{method} {template} {status} does not match its schema: {errors}"
    return Checked(template, method.upper(), status, content_type)


def problem_violations(document: Any) -> list[str]:
    """Where ``document`` breaks the ``Problem`` schema of the API's OpenAPI document.

    For the problem documents made outside Falcon (the edge's refusals, gunicorn's own
    errors), which no operation's answer check sees. The schema is the same whatever the
    routes, so the document of ``/openapi.json`` alone is enough.
    """
    return _violations(_problem_validator(), document)


@functools.cache
def _problem_validator() -> Any:
    components = openapi_document([Route(OPENAPI_PATH, OpenApiResource)])["components"]
    return OAS31Validator(
        {"$ref": "#/components/schemas/Problem", "components": components},
        format_checker=oas31_format_checker,
    )


def _violations(validator: Any, body: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in validator.iter_errors(body)
    ]


class _Spec:
    """A parsed document: its paths' patterns and a validator per documented answer."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.paths: dict[str, dict[str, Any]] = document["paths"]
        self._components = document.get("components", {})
        # Literal segments win over fields, as in falcon's router.
        templates = sorted(self.paths, key=lambda t: (t.count("{"), t))
        self._patterns = [(t, re.compile(_pattern(t))) for t in templates]

    def template_of(self, path: str) -> str | None:
        return next((t for t, pattern in self._patterns if pattern.fullmatch(path)), None)

    @functools.cache  # noqa: B019  (one per document, kept for the whole run)
    def validator(self, template: str, method: str, status: str, content_type: str) -> Any:
        operation = self.paths[template][method.lower()]
        schema = operation["responses"][status]["content"][content_type]["schema"]
        return OAS31Validator(
            {**schema, "components": self._components}, format_checker=oas31_format_checker
        )


def _pattern(template: str) -> str:
    return re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template))


@functools.cache
def _spec(document: bytes) -> _Spec:
    return _Spec(json.loads(document))
