"""The answers of ``/api/admin``: dead letters, what was done with them, the audit log.

A dead letter is where malformed messages end up, so the values read from its message's
options are shown whatever they are: a value that is not text is shown as its JSON.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, JsonValue

from infra.dlq import ACTORS, QUEUES
from infra.store.audit import ACTIONS, MAX_REASON_CHARS
from producers.schemas import Answer, Moment
from producers.schemas.users import Page


def _as_text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else json.dumps(value)


_QUEUES: list[JsonValue] = [*QUEUES]
_ACTORS: list[JsonValue] = [*ACTORS]

OptionText = Annotated[str | None, BeforeValidator(_as_text)]
"""A value of the message's options, as text."""


class DeadLetterEntry(Answer):
    """A dead letter: where it died, why, and its job."""

    id: str = Field(description="The message id (stable across retries).")
    queue: str = Field(description="The queue it died on.")
    actor: str = Field(description="The step it was for.")
    contract: OptionText = Field(description="The contract its message names.")
    dead_at: Moment = Field(description="When it was dead-lettered.")
    job_id: OptionText = Field(description="Its job.")
    tenant_id: OptionText = Field(description="Its tenant.")
    attempts: int | None = Field(description="Attempts before it died.")
    exception_type: str | None = Field(description="The last error's type.")
    exception_message: str | None = Field(description="The last error's message.")
    payload: Any = Field(description="The message's payload (a contract's JSON).")


class DeadLetterDetail(DeadLetterEntry):
    """A dead letter in full: what the list shows, with its traceback and options."""

    traceback: str | None = Field(description="The last error's traceback.")
    options: dict[str, Any] = Field(description="The message's options.")


class DeadLetters(Answer):
    """Dead letters, newest first."""

    dead_letters: list[DeadLetterEntry] = Field(description="Newest first.")


class Handled(Answer):
    """A dead letter replayed or purged."""

    outcome: Literal["replayed", "purged"] = Field(description="What was done.")
    message: str = Field(description="What was done, for a person.")
    job_id: str | None = Field(description="The dead letter's job.")


class PayloadKept(Answer):
    """An edited payload, kept for a replay."""

    outcome: Literal["kept", "unchanged"] = Field(
        description="`kept`; `unchanged`: the payload was as it is."
    )
    message: str = Field(description="What was done, for a person.")


class AuditLogEntry(Answer):
    """One operator action."""

    id: int | None = Field(description="The entry's number.")
    at: Moment = Field(description="When.")
    actor: str = Field(description="Who: an admin token's name, or the CLI's operator.")
    action: str = Field(description="`replay`, `edit`, `purge` …")
    target: str = Field(description="What it acted on (a dead letter's id …).")
    queue: str | None = Field(description="The target's queue.")
    job_id: str | None = Field(description="The target's job.")
    reason: str = Field(description="Why, in the operator's words.")
    outcome: str = Field(description="What came of it.")
    diff: str | None = Field(description="An edit's unified diff of the payload.")


class AuditLog(Answer):
    """The audit log, newest first."""

    entries: list[AuditLogEntry] = Field(description="Newest first.")


class DeadLetterFilters(Page):
    """The query of the dead letters' list (``switchboard dlq list``'s filters)."""

    queue: str | None = Field(
        default=None, json_schema_extra={"enum": _QUEUES}, description="Its queue."
    )
    actor: str | None = Field(
        default=None, json_schema_extra={"enum": _ACTORS}, description="Its step."
    )
    error: str | None = Field(default=None, description="Its last error's type.")
    since: str | None = Field(
        default=None,
        description="Dead since an ISO time (UTC without an offset) or a duration ago: "
        "`30m`, `2h`, `1d`.",
    )
    tenant: str | None = Field(default=None, description="Its tenant's name or id.")
    job: str | None = Field(default=None, description="Its job's id.")


class AuditFilters(Page):
    """The query of the audit log."""

    target: str | None = Field(default=None, description="What was acted on.")
    action: str | None = Field(
        default=None, json_schema_extra={"enum": list(ACTIONS)}, description="What was done."
    )


class ChangeReason(BaseModel):
    """A replay's or a purge's body."""

    reason: str = Field(
        min_length=1, max_length=MAX_REASON_CHARS, description="Why, for the audit log."
    )


class PayloadEdit(ChangeReason):
    """A payload edit's body."""

    payload: Any = Field(description="The new payload, checked against its contract.")
