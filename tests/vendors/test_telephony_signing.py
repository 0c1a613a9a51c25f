"""Signatures of the telephony status webhooks, and the simulator's secret file."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from infra.vendors.telephony_signing import (
    SIMULATOR_SECRET_FILE,
    SignatureError,
    sign,
    simulator_secret,
    verify,
)

SECRET = "whsec-test"
BODY = b'{"call_id":"a1b2c3d4e5","status":"completed"}'
NOW = 1_767_225_600
TOLERANCE_S = 300


def check(
    header: str | None, body: bytes = BODY, *, secret: str = SECRET, now: float = NOW
) -> None:
    verify(secret, header, body, now=now, tolerance_s=TOLERANCE_S)


def digest(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_a_timestamped_signature_signs_the_timestamp_and_the_body() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)

    assert header == f"t={NOW},v1={digest(f'{NOW}.'.encode() + BODY)}"
    check(header)


def test_a_signature_with_another_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(sign("another-secret", BODY, timestamp=NOW))


def test_a_tampered_body_does_not_verify() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)

    with pytest.raises(SignatureError, match="does not match"):
        check(header, BODY.replace(b"completed", b"failed"))


@pytest.mark.parametrize("skew_s", [TOLERANCE_S, -TOLERANCE_S])
def test_a_timestamp_at_the_edge_of_the_window_verifies(skew_s: int) -> None:
    check(sign(SECRET, BODY, timestamp=NOW + skew_s))


def test_a_signature_older_than_the_tolerance_is_refused() -> None:
    with pytest.raises(SignatureError, match="outside the 300 s window"):
        check(sign(SECRET, BODY, timestamp=NOW - TOLERANCE_S - 1))


def test_a_signature_too_far_in_the_future_is_refused() -> None:
    with pytest.raises(SignatureError, match="outside"):
        check(sign(SECRET, BODY, timestamp=NOW + TOLERANCE_S + 1))


def test_a_bare_hex_signature_signs_the_body_alone_and_ignores_time() -> None:
    header = sign(SECRET, BODY, timestamp=None)

    assert header == digest(BODY)
    check(header, now=0)
    check(header.upper())
    with pytest.raises(SignatureError, match="does not match"):
        check(header, BODY + b" ")


def test_a_sha256_prefixed_signature_verifies() -> None:
    check(f"sha256={digest(BODY)}")
    with pytest.raises(SignatureError, match="does not match"):
        check(f"sha256={digest(BODY, 'another-secret')}")


def test_during_a_rotation_one_matching_v1_entry_is_enough() -> None:
    old = digest(f"{NOW}.".encode() + BODY, "old-secret")
    new = digest(f"{NOW}.".encode() + BODY)

    check(f"t={NOW},v1={old},v1={new}")
    check(f"t={NOW}, v1={new}, v1={old}")
    with pytest.raises(SignatureError, match="does not match"):
        check(f"t={NOW},v1={old},v1={old}")


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError, match="missing X-CallKaro-Signature"):
        check(header)


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW}",
        f"v1={'0' * 64}",
        f"t=soon,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1={'0' * 64},junk",
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError, match="malformed"):
        check(header)


def test_the_simulator_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"

    first = simulator_secret(data_dir)
    second = simulator_secret(data_dir)

    path = data_dir / SIMULATOR_SECRET_FILE
    assert first == second == path.read_text().strip()
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == [SIMULATOR_SECRET_FILE]  # no temporaries


def test_an_existing_simulator_secret_is_kept(tmp_path: Path) -> None:
    (tmp_path / SIMULATOR_SECRET_FILE).write_text("kept-secret\n")

    assert simulator_secret(tmp_path) == "kept-secret"


def test_two_data_dirs_get_different_secrets(tmp_path: Path) -> None:
    assert simulator_secret(tmp_path / "a") != simulator_secret(tmp_path / "b")


def test_what_the_simulator_signs_with_its_secret_the_api_verifies(tmp_path: Path) -> None:
    secret = simulator_secret(tmp_path)

    check(sign(simulator_secret(tmp_path), BODY, timestamp=NOW), secret=secret)
