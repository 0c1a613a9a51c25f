"""Hints for a value typed almost right: the known values closest to it."""

from __future__ import annotations

from difflib import SequenceMatcher
from zoneinfo import available_timezones

MAX_SUGGESTIONS = 3
CUTOFF = 0.7
"""Below this likeness (``difflib`` ratio, 0 to 1) a zone is not offered."""
MARGIN = 0.1
"""Zones less like the typed name than the best one by more than this are left out."""

ZONE_EXAMPLE = "give an IANA time zone name, e.g. Europe/London or Asia/Kolkata"
"""The hint for a zone nothing known resembles."""


def close_zones(name: str) -> list[str]:
    """The IANA zones most like ``name``, best first (maybe none).

    Case, ``_`` and spaces do not count, and a zone's city alone is compared too, so
    ``europe/london``, ``kolkata`` and ``new york`` each find their zone.
    """
    typed = _folded(name)
    likeness = {
        zone: max(_like(typed, form) for form in _forms(zone)) for zone in available_timezones()
    }
    best = max(likeness.values(), default=0.0)
    floor = max(CUTOFF, best - MARGIN)
    close = [zone for zone, score in likeness.items() if score >= floor]
    return sorted(close, key=lambda zone: (-likeness[zone], zone))[:MAX_SUGGESTIONS]


def zone_hint(name: str) -> str:
    """What to give instead of ``name``, which is not an IANA time zone."""
    close = close_zones(name)
    if not close:
        return ZONE_EXAMPLE
    either = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"did you mean {either}?"


def _folded(name: str) -> str:
    return name.casefold().replace("_", " ").strip()


def _forms(zone: str) -> tuple[str, str]:
    whole = _folded(zone)
    return whole, whole.rsplit("/", 1)[-1]


def _like(typed: str, form: str) -> float:
    return SequenceMatcher(None, typed, form).ratio()
