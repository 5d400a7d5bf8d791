"""Runtime settings: database, SMTP, Temporal, and every duration of SPEC H4 with the rule's default."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

DATA_DIR = Path(os.environ.get("BILLING_DATA_DIR", "data"))
DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'store.db'}"

_DURATION = re.compile(r"^\s*(\d+)\s*(d|h|m|s)\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: str | int | timedelta) -> timedelta:
    """'30d', '12h', '90m', '45s' (or seconds as an int) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"invalid duration {value!r}: use a number and d, h, m or s (e.g. '30d')")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class BillingDurations(BaseModel):
    """SPEC H4: every duration of the rules is configuration, defaulting to the rule."""

    activation_grace: timedelta = Field(default=timedelta(days=30))  # D2
    rbi_processing: timedelta = Field(default=timedelta(days=3))  # E4 "several days"
    rbi_authorization_window: timedelta = Field(default=timedelta(days=5))  # E4
    overdue_suspend: timedelta = Field(default=timedelta(days=30))  # D9
    overdue_lock: timedelta = Field(default=timedelta(days=60))  # D9
    checkout_abandon: timedelta = Field(default=timedelta(hours=24))  # B3: an unconfirmed cart is abandoned

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, value: object) -> timedelta:
        return parse_duration(value)  # type: ignore[arg-type]


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def month_end_start_rate() -> float:
    """BILLING_MONTH_END_START_RATE: settlements the month-end starts per second; 0 (the default) is unpaced."""
    value = os.environ.get("BILLING_MONTH_END_START_RATE", "0")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"BILLING_MONTH_END_START_RATE must be a number of starts per second, not {value!r}") from None
    if not rate >= 0 or rate == float("inf"):
        raise ValueError(f"BILLING_MONTH_END_START_RATE must be 0 (unpaced) or a positive number, not {value!r}")
    return rate


def temporal_address() -> str | None:
    return os.environ.get("TEMPORAL_ADDRESS") or None


def temporal_namespace() -> str:
    return os.environ.get("TEMPORAL_NAMESPACE", "default")


def smtp_host() -> str:
    return os.environ.get("SMTP_HOST", "127.0.0.1")


def smtp_port() -> int:
    return int(os.environ.get("SMTP_PORT", "8025"))


def public_base_url() -> str:
    """Where links in e-mails point (the invoice page, the retry action)."""
    return os.environ.get("BILLING_PUBLIC_URL", "http://127.0.0.1:8000")
