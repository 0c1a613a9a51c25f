"""The answers of deletion on request: ``DELETE /api/admin/calls/{id}``, ``/api/users/{id}``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from producers.schemas import Answer


class ErasureTenant(BaseModel):
    """The query of a call's deletion."""

    tenant: str = Field(description="The call's tenant, by name (conversation ids are per tenant).")


class Erased(Answer):
    """What a deletion removed, and what it could not remove yet."""

    outcome: Literal["deleted", "nothing left", "partial"] = Field(
        description="`partial`: something could not go now (see `kept`); send the same request "
        "later to finish. `nothing left`: deleted before, or never there."
    )
    subject: str = Field(description="What was asked for, e.g. `call acme/conv_1`.")
    deleted: dict[str, int] = Field(
        description="Records removed, by kind (`jobs`, `call logs`, `vectors` …); kinds with none "
        "are left out."
    )
    calls: list[str] = Field(description="The conversation ids whose data went.")
    kept: list[str] = Field(description="What could not go now, and why.")
    left: list[str] = Field(
        description="What was left on purpose, and why: a user's calls from or to a number "
        "another user of the tenant also has, each to be forgotten as a call if it is theirs."
    )
