"""What the API's requests and answers look like, as pydantic models.

Its modules hold each endpoint's answers (``Answer`` models) and the query parameters
and bodies the resources read by hand; bodies the resources validate with keep their
own models (``contracts.users``, ``producers.elevenlabs``, the telephony webhook's).
``GET /openapi.json`` (``producers.openapi``) is generated from them.

Resources build their answers as ``Answer`` models and send their ``media()``, so the
document describes exactly what is sent. An answer that does not validate is the API's
own bug, never the client's: it raises ``AnswerError``, which the catch-all error
handler answers with a 500 and logs with its traceback (a ``pydantic.ValidationError``
would be answered as a 422, blaming the client). Inputs are left out of its message:
answers carry personal data.

Times are sent as the ISO 8601 text of the stored value (``2026-12-01T23:03:10+00:00``,
``2026-12-01``, ``09:30:00``), so they are strings here, documented with their
``format`` (or, for a local time, a pattern).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)

Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""An ISO 8601 date and time with its offset."""

Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
"""An ISO 8601 date."""

ClockTime = Annotated[
    str, Field(json_schema_extra={"pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"})
]
"""A local wall-clock time, ``HH:MM:SS``: no offset, so not JSON Schema's ``time``."""


class AnswerError(RuntimeError):
    """An answer did not validate against its model: a bug of the API, answered 500."""


class Answer(BaseModel):
    """A JSON answer: exactly these fields, each always present (null when unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @model_validator(mode="wrap")
    @classmethod
    def _ours_to_fix(cls, data: Any, handler: ModelWrapValidatorHandler[Answer]) -> Answer:
        try:
            return handler(data)
        except ValidationError as error:
            raise AnswerError(f"the API built an invalid {cls.__name__}: {error}") from error

    def media(self) -> dict[str, Any]:
        """The answer as ``resp.media`` takes it (JSON types only)."""
        return self.model_dump(mode="json")
