"""Activation codes (SPEC D2): unguessable codes, kept only as keyed hashes, and the grace period's arithmetic."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import date, datetime, time, timedelta, timezone

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by people
_GROUPS, _GROUP_LEN = 4, 5  # 20 symbols of 5 bits: 100 bits of entropy


def generate_code() -> str:
    symbols = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LEN))
    return "-".join(symbols[i:i + _GROUP_LEN] for i in range(0, len(symbols), _GROUP_LEN))


def normalize_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def _secret() -> bytes:
    return os.environ.get("BILLING_CODE_SECRET", "billing-dev-code-secret").encode()


def hash_code(code: str) -> str:
    """What is stored and compared: an HMAC, so a leaked table or history reveals no usable code."""
    return hmac.new(_secret(), normalize_code(code).encode(), hashlib.sha256).hexdigest()


def mask_code(code: str) -> str:
    return "*****-*****-*****-" + code[-_GROUP_LEN:]


def grace_ends_at(first_usage: date, grace: timedelta) -> datetime:
    """SPEC D2: the grace period counts days of use from the organization's first usage."""
    return datetime.combine(first_usage, time(0), tzinfo=timezone.utc) + grace


def days_left(ends_at: datetime, now: datetime) -> int:
    remaining = ends_at - now
    return max(0, remaining.days + (1 if remaining.seconds or remaining.microseconds else 0))
