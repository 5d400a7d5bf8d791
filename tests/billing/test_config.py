"""Runtime settings (SPEC H4): durations as configuration text, and the environment's defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from billing import config
from billing.config import BillingDurations, parse_duration


@pytest.mark.parametrize("text, expected", [
    ("30d", timedelta(days=30)),
    ("12h", timedelta(hours=12)),
    ("90m", timedelta(minutes=90)),
    ("45s", timedelta(seconds=45)),
    ("0s", timedelta(0)),
    (" 7 d ", timedelta(days=7)),
    ("007h", timedelta(hours=7)),
    (90, timedelta(seconds=90)),
    (0, timedelta(0)),
])
def test_durations_are_a_number_and_a_unit_or_seconds(text, expected):
    assert parse_duration(text) == expected


def test_a_timedelta_is_taken_as_it_is():
    value = timedelta(days=2, microseconds=5)
    assert parse_duration(value) is value


@pytest.mark.parametrize("value", ["30", "d", "1w", "-5d", "1.5h", "30D", "30 days", "", "3d4h", True, 1.5])
def test_anything_else_is_refused_with_an_example(value):
    with pytest.raises(ValueError) as err:
        parse_duration(value)  # a bool is not a number of seconds, nor is a float
    assert str(err.value) == f"invalid duration {value!r}: use a number and d, h, m or s (e.g. '30d')"


def test_the_durations_default_to_the_rules():
    assert BillingDurations().model_dump() == {
        "activation_grace": timedelta(days=30), "rbi_processing": timedelta(days=3),
        "rbi_authorization_window": timedelta(days=5), "overdue_suspend": timedelta(days=30),
        "overdue_lock": timedelta(days=60), "checkout_abandon": timedelta(hours=24)}


def test_every_duration_is_parsed_from_configuration_text():
    durations = BillingDurations(activation_grace="2m", rbi_processing="10s", rbi_authorization_window=600,
                                 overdue_suspend="1h", overdue_lock=timedelta(hours=2), checkout_abandon="90s")
    assert durations.model_dump() == {
        "activation_grace": timedelta(minutes=2), "rbi_processing": timedelta(seconds=10),
        "rbi_authorization_window": timedelta(minutes=10), "overdue_suspend": timedelta(hours=1),
        "overdue_lock": timedelta(hours=2), "checkout_abandon": timedelta(seconds=90)}
    with pytest.raises(ValidationError) as err:
        BillingDurations(overdue_lock="two months")
    assert err.value.errors()[0]["loc"] == ("overdue_lock",)
    assert "invalid duration 'two months'" in err.value.errors()[0]["msg"]


def test_the_environment_defaults(monkeypatch):
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "SMTP_HOST", "SMTP_PORT",
                 "BILLING_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    assert config.database_url() == config.DEFAULT_DATABASE_URL
    assert config.DEFAULT_DATABASE_URL == f"sqlite:///{config.DATA_DIR / 'store.db'}"
    assert config.temporal_address() is None
    assert config.temporal_namespace() == "default"
    assert config.smtp_host() == "127.0.0.1"
    assert config.smtp_port() == 8025
    assert config.public_base_url() == "http://127.0.0.1:8000"


def test_the_environment_overrides(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://billing@db/billing")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "billing")
    monkeypatch.setenv("SMTP_HOST", "mail")
    monkeypatch.setenv("SMTP_PORT", "2525")
    monkeypatch.setenv("BILLING_PUBLIC_URL", "https://billing.example")
    assert config.database_url() == "postgresql://billing@db/billing"
    assert config.temporal_address() == "temporal:7233"
    assert config.temporal_namespace() == "billing"
    assert config.smtp_host() == "mail"
    assert config.smtp_port() == 2525
    assert config.public_base_url() == "https://billing.example"
    monkeypatch.setenv("TEMPORAL_ADDRESS", "")
    assert config.temporal_address() is None  # set but empty: no server configured


def test_the_month_end_is_unpaced_unless_a_rate_is_set(monkeypatch):
    monkeypatch.delenv("BILLING_MONTH_END_START_RATE", raising=False)
    assert config.month_end_start_rate() == 0
    monkeypatch.setenv("BILLING_MONTH_END_START_RATE", "70")
    assert config.month_end_start_rate() == 70.0
    monkeypatch.setenv("BILLING_MONTH_END_START_RATE", "0.5")
    assert config.month_end_start_rate() == 0.5


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf", ""])
def test_a_start_rate_that_is_not_a_rate_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("BILLING_MONTH_END_START_RATE", value)
    with pytest.raises(ValueError) as err:
        config.month_end_start_rate()
    assert "BILLING_MONTH_END_START_RATE" in str(err.value) and repr(value) in str(err.value)
