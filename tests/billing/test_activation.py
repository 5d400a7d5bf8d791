"""Activation codes (SPEC D2): their shape, their keyed hash, and the grace period's arithmetic."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.activation import days_left, generate_code, grace_ends_at, hash_code, mask_code, normalize_code

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE = re.compile(rf"[{ALPHABET}]{{5}}(-[{ALPHABET}]{{5}}){{3}}")


def test_a_code_is_four_groups_of_five_symbols_people_cannot_misread():
    codes = {generate_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert CODE.fullmatch(code), code
    used = set("".join(codes).replace("-", ""))
    assert used <= set(ALPHABET) and not used & set("01IO")
    assert len(used) > 20  # every group draws from the whole alphabet


def test_a_code_is_normalized_as_people_type_it():
    assert normalize_code(" abcde-fghjk klmnp\tqrstu\n") == "ABCDEFGHJKKLMNPQRSTU"
    assert normalize_code("ABCDE-FGHJK-LMNPQ-RSTUV") == "ABCDEFGHJKLMNPQRSTUV"
    assert normalize_code("a_b.c") == "A_B.C"  # only spaces and dashes are dropped


def test_the_stored_hash_is_an_hmac_of_the_normalized_code(monkeypatch):
    monkeypatch.delenv("BILLING_CODE_SECRET", raising=False)
    expected = hmac.new(b"billing-dev-code-secret", b"ABCDEFGHJKLMNPQRSTUV", hashlib.sha256).hexdigest()
    assert hash_code("ABCDE-FGHJK-LMNPQ-RSTUV") == expected
    assert hash_code("abcde fghjk lmnpq rstuv") == expected
    monkeypatch.setenv("BILLING_CODE_SECRET", "another secret")
    assert hash_code("ABCDE-FGHJK-LMNPQ-RSTUV") == hmac.new(b"another secret", b"ABCDEFGHJKLMNPQRSTUV",
                                                             hashlib.sha256).hexdigest()


def test_a_masked_code_shows_only_its_last_group():
    assert mask_code("ABCDE-FGHJK-LMNPQ-RSTUV") == "*****-*****-*****-RSTUV"


def test_the_grace_period_counts_from_midnight_utc_of_the_first_usage():
    assert grace_ends_at(date(2026, 1, 31), timedelta(days=30)) == datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert grace_ends_at(date(2026, 1, 31), timedelta(hours=1)) == datetime(2026, 1, 31, 1, tzinfo=timezone.utc)
    assert grace_ends_at(date(2026, 1, 31), timedelta(0)).tzinfo is timezone.utc


END = datetime(2026, 3, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize("remaining, days", [
    (timedelta(days=-3), 0),
    (timedelta(seconds=-1), 0),
    (timedelta(0), 0),
    (timedelta(microseconds=1), 1),  # any part of a day left counts as a day
    (timedelta(seconds=1), 1),
    (timedelta(hours=23, minutes=59, seconds=59), 1),
    (timedelta(days=1), 1),
    (timedelta(days=1, microseconds=1), 2),
    (timedelta(days=1, seconds=1), 2),
    (timedelta(days=29, hours=1), 30),
    (timedelta(days=30), 30),
])
def test_days_left_rounds_up_part_of_a_day_and_never_goes_below_zero(remaining, days):
    assert days_left(END, END - remaining) == days


@given(st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)))
def test_days_left_is_the_ceiling_of_the_remaining_days(remaining):
    seconds = remaining.total_seconds()
    ceiling = -int(-remaining // timedelta(microseconds=1) // 86_400_000_000) if seconds > 0 else 0
    assert days_left(END, END - remaining) == ceiling
