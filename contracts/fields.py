"""Field types every contract uses: what a message may carry is what the store can hold.

A contract that validates can always be persisted, on SQLite and on PostgreSQL, so a
bad value is refused where it enters (a 422 at intake, a ``ValidationError`` for a
producer) instead of dying at the last step after the vendor calls were paid for:

- ``Identifier``: 1 to 128 letters, digits and ``._:-``, but not ``.`` or ``..`` — ids
  are served back in URLs (``/api/calls/{conversation_id}``), used as keys and as file
  names;
- ``Text``: no NUL (PostgreSQL refuses it) and no lone surrogates (no UTF-8 encoding
  exists for them; SQLite and every JSON encoder refuse them);
- ``Count`` and ``Seconds``: non-negative and within PostgreSQL's ``INTEGER``;
- ``FiniteFloat``: no NaN or infinity (JSON has neither);
- ``AwareDatetime``: carries an offset and lies between 1970 and 2200, so converting
  it to UTC can never overflow;
- ``TimeZoneName``: an IANA zone this Python knows;
- ``ResidentZoneName``: a ``TimeZoneName`` a person can live in, not one of the files
  that come with the zone database (``localtime``, ``posixrules``, ``Factory``,
  ``posix/…``, ``right/…``);
- ``PhoneNumber``: E.164 (``+`` and 8 to 15 digits);
- ``LocalTime``: a wall-clock time ``HH:MM`` or ``HH:MM:SS``, without offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.config import JsonDict

MAX_IDENTIFIER_LENGTH = 128
IDENTIFIER_PATTERN = r"^[A-Za-z0-9._:-]+$"
DOT_SEGMENTS = (".", "..")
"""Ids that match the pattern but would be path segments in a URL or a file name."""
MAX_INT32 = 2**31 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def storable_text(value: str) -> str:
    """Return ``value`` if every database and JSON encoder can hold it.

    Raises:
        ValueError: It contains NUL or a lone surrogate.
    """
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("must not contain lone surrogates (e.g. \\ud800)") from error
    return value


def _not_a_dot_segment(value: str) -> str:
    if value in DOT_SEGMENTS:
        raise ValueError("must not be '.' or '..'")
    return value


def _aware_and_in_range(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a timezone offset (e.g. 2026-01-01T10:00:00Z)")
    out_of_range = ValueError("datetime must lie between 1970-01-01 and 2200-01-01 (UTC)")
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError as error:  # e.g. 9999-12-31T23:00-05:00 is in the year 10000
        raise out_of_range from error
    if not EARLIEST <= in_utc < LATEST:
        raise out_of_range
    return value


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name, e.g. Europe/London)"
        ) from error
    return name


NOT_RESIDENT_ZONES = {
    "localtime": "is the server's own zone (it changes with the server), not a person's",
    "posixrules": "is the zone database's template for POSIX TZ strings, not a zone",
    "Factory": "is the zone database's placeholder for a machine whose zone is not set",
}
"""Names the zone database installs that load as zones but are no place's, and why.

``zoneinfo.available_timezones()`` lists ``localtime`` and ``Factory`` too wherever the
system's database has them, so it cannot tell them apart. Compared casefolded: on a
case-insensitive file system ``LocalTime`` loads as well."""
NOT_RESIDENT_DIRECTORIES = ("posix/", "right/")
"""Copies of the whole database: ``posix/`` the same zones again, ``right/`` counting leap
seconds, which puts a civil clock seconds off."""

_NOT_RESIDENT_FOLDED = {name.casefold(): why for name, why in NOT_RESIDENT_ZONES.items()}


def _resident_zone(name: str) -> str:
    folded = name.casefold()
    if folded in _NOT_RESIDENT_FOLDED:
        raise ValueError(
            f"{name!r} {_NOT_RESIDENT_FOLDED[folded]}: use the IANA name of the zone the "
            "person lives in, e.g. Europe/London or UTC"
        )
    if folded.startswith(NOT_RESIDENT_DIRECTORIES):
        _, _, zone = name.partition("/")
        raise ValueError(
            f"{name!r} is a copy in the zone database, not a zone's own name: use {zone!r}"
        )
    return name


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=IDENTIFIER_PATTERN),
    AfterValidator(_not_a_dot_segment),
    Field(json_schema_extra={"not": {"enum": list(DOT_SEGMENTS)}}),
]
"""An id: 1 to 128 characters of letters, digits and ``._:-``, other than ``.`` and ``..``."""

_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def is_identifier(value: str) -> bool:
    """Whether ``value`` is an ``Identifier`` (for ids that arrive outside a contract)."""
    try:
        _IDENTIFIER.validate_python(value)
    except ValidationError:
        return False
    return True


Text = Annotated[str, AfterValidator(storable_text)]
"""Free text without NUL or lone surrogates."""

Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""A non-negative integer that fits PostgreSQL's ``INTEGER``."""

Seconds = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""A non-negative whole number of seconds (e.g. a call's length)."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float that is neither NaN nor infinite."""

AwareDatetime = Annotated[datetime, AfterValidator(_aware_and_in_range)]
"""A datetime with a UTC offset, between 1970 and 2200; naive datetimes are rejected."""

TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, e.g. ``Europe/London``."""

ResidentZoneName = Annotated[
    str,
    # First: the reason holds whether or not this machine's database has the file.
    AfterValidator(_resident_zone),
    AfterValidator(_known_zone),
    Field(
        json_schema_extra={
            "not": {
                "anyOf": [
                    {"enum": list(NOT_RESIDENT_ZONES)},
                    {"pattern": f"^({'|'.join(NOT_RESIDENT_DIRECTORIES)})"},
                ]
            }
        }
    ),
]
"""A time zone a person lives in: an IANA name (``Europe/London``, ``UTC``), not
``localtime`` (the server's zone), ``posixrules``, ``Factory`` or a ``posix/`` or
``right/`` copy."""

E164_PATTERN = r"^\+[1-9][0-9]{7,14}$"


def _e164(value: str) -> str:
    if not re.fullmatch(E164_PATTERN, value):
        raise ValueError("must be an E.164 number: + and 8 to 15 digits, e.g. +14155550123")
    return value


PhoneNumber = Annotated[
    str,
    AfterValidator(_e164),
    Field(json_schema_extra={"pattern": E164_PATTERN}, examples=["+14155550123"]),
]
"""A phone number in E.164: ``+``, a country code and the number, 8 to 15 digits."""


def _wall_clock(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("must be a local wall-clock time without offset, e.g. 09:30")
    return value.replace(microsecond=0)


def _local_time_schema(schema: JsonDict) -> None:
    # JSON Schema's "time" format requires an offset, which a wall-clock time never has.
    schema.pop("format", None)
    schema["pattern"] = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


LocalTime = Annotated[
    time,
    AfterValidator(_wall_clock),
    Field(json_schema_extra=_local_time_schema),
]
"""A local wall-clock time, ``HH:MM`` or ``HH:MM:SS`` (seconds are kept, fractions dropped)."""
