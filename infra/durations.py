"""Lengths of time for people: the console's and the CLI's ``3 min 20 s``."""

from __future__ import annotations

_SHORT = 10
"""Below this many seconds a duration keeps its tenths."""


def human_duration(seconds: float | None) -> str:
    """``4.2 s``, ``45 s``, ``3 min 20 s``, ``2 h 5 min``, ``3 d 4 h`` (``-`` for None)."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{seconds:.1f} s" if seconds < _SHORT else f"{secs} s"
