"""Signatures of the telephony provider's status webhooks, and the simulator's secret.

Header ``X-CallKaro-Signature``, HMAC-SHA256 with the webhook secret, hex:

- ``t=<unix seconds>,v1=<hex>`` signs ``"{t}.{raw_body}"``: the timestamp must lie
  within the tolerance both ways, so a captured request cannot be replayed later;
- a bare ``<hex>`` (or ``sha256=<hex>``) signs the raw body alone, for providers that
  send no timestamp: repeated events are then caught by their event key only.

Several ``v1=`` entries may be sent while a secret is rotated; one match is enough.
The simulator signs with the configured secret or, when none is set, with a random one
kept in ``<data_dir>/telephony-simulator.secret``, which the API reads too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SIGNATURE_HEADER = "X-CallKaro-Signature"
SIMULATOR_SECRET_FILE = "telephony-simulator.secret"  # noqa: S105  (a file name)


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match."""


def _digest(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str (a crafted
    # header), which would be a 500 instead of a 401.
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def sign(secret: str, body: bytes, *, timestamp: int | None) -> str:
    """The signature header value of ``body`` (bare, without a timestamp, when None)."""
    if timestamp is None:
        return _digest(secret, body)
    return f"t={timestamp},v1={_digest(secret, f'{timestamp}.'.encode() + body)}"


def verify(secret: str, header: str | None, body: bytes, *, now: float, tolerance_s: float) -> None:
    """Check a signature header against the raw body, in constant time.

    Raises:
        SignatureError: Missing, malformed, outside the time window, or no match.
    """
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    header = header.strip()
    if "=" not in header or header.startswith("sha256="):
        expected = _digest(secret, body)
        given = header.removeprefix("sha256=")
        if not _same(expected, given):
            raise SignatureError("signature does not match the body")
        return
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header (expected t=<unix>,v1=<hex>)")
        fields.setdefault(key, []).append(value)
    stamps, digests = fields.get("t", []), fields.get("v1", [])
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not digests:
        raise SignatureError("malformed signature header (expected t=<unix>,v1=<hex>)")
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"signature timestamp outside the {tolerance_s:.0f} s window")
    expected = _digest(secret, f"{timestamp}.".encode() + body)
    matches = [_same(expected, digest) for digest in digests]
    if not any(matches):
        raise SignatureError("signature does not match the body")


def simulator_secret(data_dir: Path) -> str:
    """The local simulator's webhook secret, created on first use (mode 0600).

    Written to a temporary file and linked into place, so two processes starting at
    once agree on one secret and neither reads a half-written file.
    """
    path = data_dir / SIMULATOR_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = data_dir / f".{SIMULATOR_SECRET_FILE}.{os.getpid()}"
        temporary.write_text(secrets.token_hex(32))
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process linked its secret first: use that one
        finally:
            temporary.unlink()
    return path.read_text().strip()
