"""Standard Webhooks signing, checked with the reference `standardwebhooks` package."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tracking_service.webhooks import signing

BODY = b'{"type":"shipment.delayed","timestamp":"2026-12-01T10:00:00Z","data":{}}'


def test_new_secret_is_whsec_and_32_random_bytes() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


def test_reference_library_verifies_our_headers() -> None:
    secret = signing.new_secret()
    now = int(time.time())
    headers = signing.headers("msg_abc", now, BODY, [secret])
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "shipment.delayed",
        "timestamp": "2026-12-01T10:00:00Z",
        "data": {},
    }


def test_reference_library_refuses_a_changed_body_or_another_secret() -> None:
    secret = signing.new_secret()
    headers = signing.headers("msg_abc", int(time.time()), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"delayed", b"delivered"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_signature_matches_the_reference_signer() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    ours = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", int(at.timestamp()), BODY)
    assert ours == Webhook(secret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", at, BODY.decode())


def test_during_a_rotation_both_secrets_sign_and_each_verifies() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    both = signing.signing_secrets(new, old, now + timedelta(hours=1), now)
    assert both == (new, old)
    headers = signing.headers("msg_1", int(time.time()), BODY, both)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_after_the_overlap_only_the_new_secret_signs() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert signing.signing_secrets(new, old, now, now) == (new,)
    assert signing.signing_secrets(new, None, None, now) == (new,)
    headers = signing.headers("msg_1", int(time.time()), BODY, (new,))
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, headers)


@pytest.mark.parametrize(
    "bad", ["abc", "whsec_!!!", "whsec_" + base64.b64encode(b"x" * 8).decode()]
)
def test_a_malformed_secret_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        signing.secret_key(bad)


def test_verify_accepts_what_we_sign_and_refuses_the_rest() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    now = int(time.time())
    headers = signing.headers("msg_1", now, BODY, (new, old))
    signing.verify([new], headers, BODY, now=now)
    signing.verify([old], headers, BODY, now=now + 299)
    with pytest.raises(signing.SignatureError):
        signing.verify([signing.new_secret()], headers, BODY, now=now)
    with pytest.raises(signing.SignatureError):
        signing.verify([new], headers, BODY + b" ", now=now)
    with pytest.raises(signing.SignatureError):
        signing.verify([new], headers, BODY, now=now + 301)
    with pytest.raises(signing.SignatureError):
        signing.verify([new], {"webhook-id": "msg_1"}, BODY, now=now)
