"""Standard Webhooks signatures (SPEC I5, I6): one signing function for every sender (the sandbox gateway, our own
event deliveries) and one verifier for every receiver (the gateway endpoint, the demo receiver).

The `standardwebhooks` package computes the HMAC-SHA256 over `id.timestamp.body` and reads `whsec_…` secrets; its
`verify()` is not used as is because it checks the timestamp against the wall clock (a simulation runs on the
business clock, days ahead) and lets a malformed `webhook-signature` header escape as ValueError."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
TOLERANCE = timedelta(minutes=5)  # I5: older or newer than this is refused (a replay outside the window)


class InvalidSignature(Exception):
    """A webhook that is forged, malformed, or outside the timestamp tolerance: nothing it says is believed."""


def new_secret() -> str:
    """A fresh `whsec_…` secret (32 random bytes), shown once to whoever registers an endpoint."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_from_text(text: str) -> str:
    """A `whsec_…` secret as is; any other configured text becomes one (its bytes, base64-encoded)."""
    return text if text.startswith(SECRET_PREFIX) else SECRET_PREFIX + base64.b64encode(text.encode()).decode()


def sign(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three headers a sender attaches: `webhook-id` stays the same on every retry of one message (the receiver
    deduplicates by it), `webhook-timestamp` is the moment of this attempt."""
    signature = Webhook(secret).sign(message_id, at.astimezone(timezone.utc), body.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def _minutes(tolerance: timedelta) -> str:
    minutes = tolerance / timedelta(minutes=1)
    return f"{minutes:g} minute" + ("" if minutes == 1 else "s")


def verify(secret: str, body: bytes, headers: Mapping[str, str], now: datetime,
           tolerance: timedelta = TOLERANCE) -> str:
    """The message id of a genuine webhook sent within `tolerance` of `now`; InvalidSignature otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    message_id, stamp, signatures = (lower.get("webhook-id"), lower.get("webhook-timestamp"),
                                     lower.get("webhook-signature"))
    if not (message_id and stamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = datetime.fromtimestamp(int(stamp), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise InvalidSignature("webhook-timestamp is not a Unix time in seconds") from None
    if sent < now - tolerance:
        raise InvalidSignature(f"webhook-timestamp is too old (more than {_minutes(tolerance)})")
    if sent > now + tolerance:
        raise InvalidSignature(f"webhook-timestamp is in the future (more than {_minutes(tolerance)})")
    try:
        expected = base64.b64decode(Webhook(secret).sign(message_id, sent, body.decode()).split(",", 1)[1])
    except UnicodeDecodeError:
        raise InvalidSignature("the body is not UTF-8") from None
    for versioned in signatures.split(" "):
        version, _, value = versioned.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return message_id
    raise InvalidSignature("no webhook-signature matches the body")
