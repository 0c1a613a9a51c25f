"""Signing webhooks the way ElevenLabs does, so the demo can play the voice platform.

Header ``ElevenLabs-Signature: t=<unix seconds>,v0=<hex>`` where the hex digest is
HMAC-SHA256 with the webhook secret over ``"{t}.{raw_body}"``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "ElevenLabs-Signature"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``ElevenLabs-Signature`` header value of ``body`` (signed now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v0={digest}"
