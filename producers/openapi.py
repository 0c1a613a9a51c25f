"""``GET /openapi.json``: the API's OpenAPI 3.1 document, built once by ``create_app``.

``DocumentedRoutes`` adds the API's routes to the app and remembers them; ``publish()``
then builds the document from them and serves it. For each route and each responder
falcon would call (``falcon.routing.map_http_methods``), the responder's ``@operation``
(``producers.operations``) says who may call it, its parameters, its body and its
answers; the schemas are the JSON Schemas of the pydantic models it names, generated
together (``pydantic.json_schema.models_json_schema``) so each model is one component,
and apispec assembles the document. A responder without a declaration stops
``create_app``: the document cannot leave one out.

Not in the document: the console (``/admin/…``, ``CONSOLE_PREFIX``), HTML pages and
forms for a browser, added by ``producers.console.routes`` outside these routes; its
JSON twin for scripts is ``/api/admin/…``.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import falcon
from apispec import APISpec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from infra.vendors import telephony_signing
from producers import elevenlabs
from producers.errors import PROBLEM_JSON, Problem
from producers.operations import PUBLIC, Operation, operation, operation_of, returns
from producers.private import HEADER_MEANINGS, is_private

OPENAPI_PATH = "/openapi.json"
CONSOLE_PREFIX = "/admin"
"""Routes under it are the console's HTML pages, not part of the document."""

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
_PATH_FIELD = re.compile(r"{([^}]*)}")

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant's API key (`switchboard tenants add`), or an admin or viewer "
        "token (`SWITCHBOARD_ADMIN_TOKEN`, `switchboard admins add NAME --role admin|viewer`).",
    },
    "elevenLabsSignature": {
        "type": "apiKey",
        "in": "header",
        "name": elevenlabs.SIGNATURE_HEADER,
        "description": '`t=<unix seconds>,v0=<hex HMAC-SHA256(secret, "{t}.{raw body}")>`; '
        "several `v0=` while a secret is rotated.",
    },
    "callKaroSignature": {
        "type": "apiKey",
        "in": "header",
        "name": telephony_signing.SIGNATURE_HEADER,
        "description": '`t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{raw body}")>`, '
        "or a bare hex HMAC-SHA256 of the raw body.",
    },
}

TAGS: dict[str, str] = {
    "intake": "Webhooks in: each accepted request is a job.",
    "jobs": "Any job, of any workflow, step by step.",
    "calls": "Analysed calls and their similar calls.",
    "users": "Users called every day, their preferences and their calls.",
    "queues": "The old service's queue paths: status and a manual tick.",
    "dead letters": "Dead letters and the audit log of what was done with them.",
    "erasure": "Deleting a call's or a user's data on request, audited.",
    "health": "Liveness, readiness and this document.",
}

_DESCRIPTION = """\
Switchboard runs background jobs for voice-AI products: webhooks in, pipelines out.

Every error is an RFC 9457 problem document (`application/problem+json`); a 422 names
each invalid field in `errors`. A job's states are `queued`, `processing`, `completed`
and `failed`, the same in every answer, the CLI and the console.

The console under `/admin` (HTML for a browser) is not described here: `/api/admin`
is its JSON interface."""

_PROBLEM_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "The scheme to authenticate with."},
    429: {"Retry-After": "Seconds until a new request may succeed."},
    503: {"Retry-After": "Seconds to wait, when a dependency is unreachable."},
}
_BODY_PROBLEMS = {
    413: "the body is larger than `SWITCHBOARD_API__MAX_BODY_BYTES`",
    422: "the body is not a JSON object every store can hold (nesting, numbers, NUL), "
    "or a field is missing or wrong: `errors` names each",
}
_STORE_PROBLEM = "the database or the broker is unreachable: retry after `Retry-After` seconds"
_UNEXPECTED = (
    "An unexpected error (500, logged with its traceback), or a request gunicorn refuses "
    "itself (400, 414, 431): a problem document."
)


class UndocumentedResponderError(Exception):
    """A route's responder has no ``@operation``: the document would leave it out."""


@dataclass(frozen=True)
class Route:
    """A route of the API: its URI template and its resource (or the resource's class)."""

    template: str
    resource: object


class DocumentedRoutes:
    """Adds the API's routes to ``app`` and serves their OpenAPI document.

    Args:
        app: The application.
    """

    def __init__(self, app: falcon.App[falcon.Request, falcon.Response]) -> None:
        self._app = app
        self._routes: list[Route] = []

    def add(self, template: str, resource: object) -> None:
        """Add a route, to the app and to the document."""
        if template.startswith(CONSOLE_PREFIX):
            raise ValueError(f"{template}: the console's routes are not the API's")
        self._app.add_route(template, resource)
        self._routes.append(Route(template, resource))

    def publish(self) -> None:
        """Build the document of every route added, itself included, and serve it.

        Declarations are the resources' classes', so apps of the same routes (every test
        builds one) share one document, built and serialized once per process.

        Raises:
            UndocumentedResponderError: A responder has no ``@operation``.
        """
        classes = tuple((route.template, type(route.resource)) for route in self._routes)
        self._app.add_route(OPENAPI_PATH, OpenApiResource(_serialized(classes)))


@functools.cache
def _serialized(classes: tuple[tuple[str, type], ...]) -> bytes:
    routes = [Route(template, cls) for template, cls in classes]
    document = openapi_document([*routes, Route(OPENAPI_PATH, OpenApiResource)])
    return json.dumps(document, ensure_ascii=False).encode()


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")

    openapi: str = Field(description="The OpenAPI version.")
    info: dict[str, Any] = Field(description="Title, version and description of the API.")
    paths: dict[str, Any] = Field(description="Every operation.")


class OpenApiResource:
    """``GET /openapi.json``: the document.

    Args:
        document: The document, serialized as JSON.
    """

    def __init__(self, document: bytes) -> None:
        self._body = document

    @operation(
        "getOpenApi",
        summary="This document",
        tag="health",
        access=PUBLIC,
        answers=[returns(200, "The OpenAPI 3.1 document of the API.", OpenApiDocument)],
        store=False,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the OpenAPI document of every endpoint but the console's pages."""
        del req
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


@dataclass(frozen=True)
class _Found:
    template: str
    method: str
    declared: Operation


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (see the module docstring).

    Raises:
        UndocumentedResponderError: A responder has no ``@operation``.
        ValueError: An operation names an unknown tag or gives a status as an answer and
            a problem, or a template has a converter.
    """
    found = [_Found(r.template, m, d) for r in routes for m, d in _declared(r)]
    refs, schemas = _schemas(found)
    spec = APISpec(
        title="Switchboard API",
        version=version("switchboard"),
        openapi_version=OPENAPI_VERSION,
        info={"description": _DESCRIPTION},
    )
    for name, schema in schemas.items():
        spec.components.schema(name, schema)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for tag, description in TAGS.items():
        spec.tag({"name": tag, "description": description})
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for item in found:
        paths[item.template][item.method.lower()] = _operation(item, refs)
    for template, operations in paths.items():
        spec.path(path=template, operations=operations)
    document: dict[str, Any] = _markdown_code(spec.to_dict())
    return document


def _markdown_code(node: Any) -> Any:
    """Descriptions taken from docstrings, with reST's ````code```` as CommonMark's."""
    if isinstance(node, dict):
        return {
            key: value.replace("``", "`")
            if key == "description" and isinstance(value, str)
            else _markdown_code(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_markdown_code(item) for item in node]
    return node


def _declared(route: Route) -> Iterable[tuple[str, Operation]]:
    for method, responder in falcon.routing.map_http_methods(route.resource).items():
        declared = operation_of(responder)
        if declared is None:
            raise UndocumentedResponderError(
                f"{method} {route.template}: add @operation to "
                f"{getattr(responder, '__qualname__', responder)}"
            )
        if declared.tag not in TAGS:
            raise ValueError(f"{declared.operation_id}: unknown tag {declared.tag!r}")
        yield method, declared


_Key = tuple[type[Any], JsonSchemaMode]


def _schemas(found: list[_Found]) -> tuple[dict[_Key, dict[str, Any]], dict[str, Any]]:
    """Each model's reference, and every component schema, from one generation."""
    keys: set[_Key] = {(Problem, "serialization")}
    for item in found:
        declared = item.declared
        keys.update((m, "serialization") for a in declared.answers for m in a.models)
        if declared.body is not None:
            keys.add((declared.body, "validation"))
    refs, top = models_json_schema(
        sorted(keys, key=lambda k: (k[0].__name__, k[1])), ref_template=_REF
    )
    return dict(refs), top.get("$defs", {})


def _operation(item: _Found, refs: dict[_Key, dict[str, Any]]) -> dict[str, Any]:
    declared = item.declared
    scheme = declared.access.scheme
    document: dict[str, Any] = {
        "operationId": declared.operation_id,
        "summary": declared.summary,
        "description": f"{declared.description}\n\n**Who may call:** {declared.access.who}",
        "tags": [declared.tag],
        "security": [{scheme: []}] if scheme else [],
        "parameters": [*_path_parameters(item.template), *_parameters(declared)],
        "responses": _responses(declared, refs, bodiless=item.method == "HEAD"),
    }
    if is_private(item.template):
        for response in document["responses"].values():
            response.setdefault("headers", {}).update(_headers(HEADER_MEANINGS)["headers"])
    if declared.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {falcon.MEDIA_JSON: {"schema": refs[(declared.body, "validation")]}},
        }
    return document


def _responses(
    declared: Operation, refs: dict[_Key, dict[str, Any]], *, bodiless: bool
) -> dict[str, Any]:
    """The answers and problems of an operation; with ``bodiless`` (a ``HEAD``), no bodies.

    RFC 9110 (9.3.2): the answer to ``HEAD`` has no content, whatever its status, so
    none is documented, not even a problem's.
    """
    if bodiless and any(answer.models for answer in declared.answers):
        raise ValueError(f"{declared.operation_id}: a HEAD answer has no body: use no_body")
    answers, problems = _answers(declared, refs), _problems(declared, refs)
    both = sorted(set(answers) & set(problems))
    if both:
        raise ValueError(f"{declared.operation_id}: {both} are both answers and problems")
    if bodiless:
        problems = {
            status: {k: v for k, v in problem.items() if k != "content"}
            for status, problem in problems.items()
        }
    return {**answers, **problems}


def _path_parameters(template: str) -> list[dict[str, Any]]:
    names = _PATH_FIELD.findall(template)
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"{template}: write {{{name}}} without a converter")
    return [{"name": name, "in": "path", "schema": {"type": "string"}} for name in names]


def _parameters(declared: Operation) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": p.name, "in": "header", "description": p.description, "schema": dict(p.schema)}
        for p in declared.headers
    ]
    if declared.query is None:
        return parameters
    schema = declared.query.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    for name, field in schema["properties"].items():
        field = _not_null(field)
        field.pop("title", None)
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": field.pop("description", ""),
                "schema": field,
            }
        )
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without its ``null``: it is left out, not null."""
    options = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    if len(options) != 1:
        return dict(schema)
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**options[0], **rest}


def _answers(declared: Operation, refs: dict[_Key, dict[str, Any]]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for answer in declared.answers:
        schemas = [refs[(model, "serialization")] for model in answer.models]
        content = (
            {
                "content": {
                    falcon.MEDIA_JSON: {
                        "schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
                    }
                }
            }
            if schemas
            else {}
        )
        answers[str(answer.status)] = {
            "description": answer.description,
            **content,
            **_headers(answer.headers),
        }
    return answers


def _problems(declared: Operation, refs: dict[_Key, dict[str, Any]]) -> dict[str, Any]:
    when: dict[int, list[str]] = defaultdict(list)
    sources: list[Mapping[int, str]] = [declared.access.problems]
    if declared.body is not None:
        sources.append(_BODY_PROBLEMS)
    sources.append(declared.problems)
    if declared.store:
        sources.append({503: _STORE_PROBLEM})
    for source in sources:
        for status, description in source.items():
            when[status].append(description)
    content = {PROBLEM_JSON: {"schema": refs[(Problem, "serialization")]}}
    problems: dict[str, Any] = {
        str(status): {
            "description": _sentence("; ".join(descriptions)),
            "content": content,
            **_headers(_PROBLEM_HEADERS.get(status, {})),
        }
        for status, descriptions in sorted(when.items())
    }
    problems["default"] = {"description": _UNEXPECTED, "content": content}
    return problems


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}."


def _headers(headers: Mapping[str, str]) -> dict[str, Any]:
    if not headers:
        return {}
    return {
        "headers": {
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in headers.items()
        }
    }
