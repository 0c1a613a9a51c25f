"""What each responder answers, declared on it, for ``GET /openapi.json``.

``@operation(...)`` records on a responder (``on_get``, ``on_post`` …) its operation id,
who may call it (``Access``), its body, query and header parameters as pydantic
models or ``Param`` s, its answers (``Returns``, each a ``producers.schemas.Answer``
model) and the problems it may answer. ``producers.openapi`` reads the declarations of
every route ``create_app`` adds and refuses to build without one, so a new responder
cannot be left out of the document.

Problems implied by the declaration are added for every operation that has them:

- its ``Access``: 401 (and 403 for the admin's operations, 503 for a webhook without
  its secret);
- a body: 413 (too large) and 422 (not a JSON object every store can hold, or a field
  missing or wrong);
- ``store=True`` (the default): 503 with ``Retry-After`` when the database or broker
  is unreachable.

A ``HEAD`` responder (``on_head``) is declared like any other, its answers with
``no_body``: the document gives none of its answers, problems included, a body.

Declarations change no behaviour: resources still parse and answer by themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=Callable[..., None])

_ATTRIBUTE = "__openapi_operation__"


@dataclass(frozen=True)
class Access:
    """Who may call an operation: a security scheme and the problems it adds.

    Attributes:
        scheme: The name of the security scheme (``producers.openapi``); None: anyone.
        who: Who may call, in words, added to the operation's description.
        problems: Status codes the check answers, and when.
    """

    scheme: str | None
    who: str
    problems: Mapping[int, str] = field(default_factory=dict)


_UNAUTHORIZED = "no `Authorization: Bearer <key>`, or a key or token that is not valid"

PUBLIC = Access(None, "Anyone: no authentication.")
TENANT = Access(
    "bearer",
    "A tenant's API key (its own data only; another tenant's is a 404, like an unknown id) "
    "or an admin or viewer token (every tenant's).",
    {401: _UNAUTHORIZED},
)
TENANT_CHANGE = Access(
    "bearer",
    "A tenant's API key (its own data only; another tenant's is a 404, like an unknown id) "
    "or an admin token (every tenant's; a viewer may look, not change).",
    {401: _UNAUTHORIZED, 403: "a viewer's token"},
)
ADMIN_READ = Access(
    "bearer",
    "An admin or viewer token.",
    {401: _UNAUTHORIZED, 403: "a tenant's API key: this is shared by every tenant"},
)
ADMIN_CHANGE = Access(
    "bearer",
    "An admin token (a viewer may look, not change); audited under the token's name.",
    {401: _UNAUTHORIZED, 403: "a tenant's API key, or a viewer's token"},
)
ELEVENLABS = Access(
    "elevenLabsSignature",
    "ElevenLabs, signing the raw body with the webhook's secret.",
    {
        401: "the signature is missing, malformed, wrong or out of the time window",
        503: "no webhook secret is configured",
    },
)
CALLKARO = Access(
    "callKaroSignature",
    "The telephony provider, signing the raw body with the webhook's secret.",
    {
        401: "the signature is missing, malformed, wrong or out of the time window",
        503: "no webhook secret is configured",
    },
)


@dataclass(frozen=True)
class Returns:
    """One successful answer of an operation.

    Attributes:
        status: Its HTTP status.
        description: When it is sent.
        models: Its body's model, or several it may be (documented as ``oneOf``); none
            for an answer without a body (``no_body``: a ``HEAD``'s).
        headers: Response headers it carries, with what they say.
    """

    status: int
    description: str
    models: tuple[type[BaseModel], ...]
    headers: Mapping[str, str] = field(default_factory=dict)


def returns(
    status: int,
    description: str,
    *models: type[BaseModel],
    headers: Mapping[str, str] | None = None,
) -> Returns:
    """A ``Returns`` of ``models`` (at least one)."""
    if not models:
        raise ValueError("an answer needs a model")
    return Returns(status, description, models, dict(headers or {}))


def no_body(status: int, description: str, *, headers: Mapping[str, str] | None = None) -> Returns:
    """A ``Returns`` without a body: a ``HEAD`` responder's answers, which never have one."""
    return Returns(status, description, (), dict(headers or {}))


@dataclass(frozen=True)
class Param:
    """A request header or query parameter the models do not describe.

    Attributes:
        name: Its name.
        description: What it says.
        schema: Its JSON Schema.
    """

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    """Everything the OpenAPI document says about one responder (see ``operation``)."""

    operation_id: str
    summary: str
    tag: str
    access: Access
    answers: tuple[Returns, ...]
    problems: Mapping[int, str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    headers: tuple[Param, ...]
    store: bool
    description: str


def operation(
    operation_id: str,
    *,
    summary: str,
    tag: str,
    access: Access,
    answers: Sequence[Returns],
    problems: Mapping[int, str] | None = None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    headers: Sequence[Param] = (),
    store: bool = True,
) -> Callable[[R], R]:
    """Declare what the decorated responder answers; its docstring is the description.

    Args:
        operation_id: A unique id, the method name of a generated client (``getJob``).
        summary: One line.
        tag: The group it is listed under.
        access: Who may call it.
        answers: Its successful answers.
        problems: Other problem answers it gives, by status, and when.
        body: The model of its JSON body (documented in validation mode).
        query: A model whose fields are its query parameters.
        headers: Request headers it reads.
        store: Whether it reads or writes the database (503 when it is down).
    """

    def declare(responder: R) -> R:
        setattr(
            responder,
            _ATTRIBUTE,
            Operation(
                operation_id=operation_id,
                summary=summary,
                tag=tag,
                access=access,
                answers=tuple(answers),
                problems=dict(problems or {}),
                body=body,
                query=query,
                headers=tuple(headers),
                store=store,
                description=_markdown(responder.__doc__ or ""),
            ),
        )
        return responder

    return declare


def operation_of(responder: Callable[..., Any]) -> Operation | None:
    """The declaration of ``responder`` (a function or a bound method), if any."""
    declared = getattr(responder, _ATTRIBUTE, None)
    return declared if isinstance(declared, Operation) else None


def _markdown(docstring: str) -> str:
    """A docstring's paragraphs, each on one line (``producers.openapi`` turns its code)."""
    lines = [line.strip() for line in docstring.strip().splitlines()]
    return " ".join(line or "\n\n" for line in lines).replace(" \n\n ", "\n\n")
