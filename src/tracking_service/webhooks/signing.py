"""Standard Webhooks signatures: the three headers a receiver verifies, computed purely.

`webhook-signature` is `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), the key
being the base64-decoded bytes after `whsec_`. During a secret rotation's overlap both the new
and the old secret sign, space-separated, so a receiver holding either verifies. The
timestamp is the real wall-clock second of the attempt (receivers compare it with their own
clock to refuse replays), never the service's simulated time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


@lru_cache(maxsize=1024)
def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; raises ValueError when it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ + base64") from None
    if len(key) < 24:
        raise ValueError("a webhook secret holds at least 24 bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with one secret."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> tuple[str, ...]:
    """The secrets that sign at `now` (service clock): the current one, and the previous one
    while its overlap after a rotation lasts."""
    if previous and previous_until is not None and now < previous_until:
        return (secret, previous)
    return (secret,)


def headers(msg_id: str, timestamp: int, body: bytes, secrets_: Sequence[str]) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (plus the JSON content type)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
        "content-type": "application/json",
    }


class SignatureError(ValueError):
    """A request that does not carry a valid Standard Webhooks signature."""


def verify(
    secrets_: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance: int = 300,
) -> None:
    """Check a received webhook as a receiver does: the three headers are there, the
    timestamp is within `tolerance` seconds of `now` (the receiver's real clock, against
    replays), and one `v1` signature matches one of `secrets_` (constant-time). Raises
    SignatureError saying why not. (The demo's receiver uses it; tests check it against the
    reference `standardwebhooks` package.)"""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signed = headers.get("webhook-signature")
    if not msg_id or not stamp or not signed:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"webhook-timestamp is {now - timestamp:+d} s from now")
    given = [s.encode() for s in signed.split(" ") if s.startswith("v1,")]
    for secret in secrets_:
        expected = signature(secret, msg_id, timestamp, body).encode()
        if any(hmac.compare_digest(expected, g) for g in given):
            return
    raise SignatureError("no signature matches the secret")
