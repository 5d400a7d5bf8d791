"""Building the cloud invoice: one rounding per line, and every summary adds up to the cent (SPEC M1, C4, G2)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from billing.config import BillingDurations, parse_duration
from billing.invoicing import (UsageItem, build_cloud_invoice, first_day_of, invoice_number, last_closed_period,
                               last_day_of, next_period, period_before, period_end, period_of,
                               price_usage, tax_invoice_number)

quantities = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=50, places=6, allow_nan=False, allow_infinity=False)
items = st.builds(UsageItem, project=st.sampled_from(["web", "api", "etl"]), deployment=st.just("Cluster0"),
                  service=st.sampled_from(["Atlas Dedicated", "Data Transfer", "Backup"]), sku=st.just("SKU"),
                  start_date=st.just(date(2027, 1, 1)), end_date=st.just(date(2027, 2, 1)), quantity=quantities,
                  unit=st.just("hours"), unit_price=prices)


@given(st.lists(items, max_size=40))
def test_invoice_usage_is_the_sum_of_rounded_lines_and_summaries_agree(usage):
    invoice = build_cloud_invoice(usage)
    assert all(line.amount == line.amount.quantize(Decimal("0.01")) for line in invoice.lines)
    assert invoice.usage == sum((line.amount for line in invoice.lines), Decimal(0))
    assert sum(invoice.by_project.values(), Decimal(0)) == invoice.usage
    assert sum(invoice.by_service.values(), Decimal(0)) == invoice.usage
    for line, item in zip(invoice.lines, usage):
        assert abs(line.amount - item.quantity * item.unit_price) <= Decimal("0.005")


def test_line_rounds_half_up_once():
    [line] = build_cloud_invoice([UsageItem(project="p", service="s", sku="k", start_date=date(2027, 1, 1),
                                            end_date=date(2027, 1, 2), quantity=Decimal("1"),
                                            unit_price=Decimal("0.125"))]).lines
    assert line.amount == Decimal("0.13")


def test_periods_and_invoice_numbers():
    assert period_of(date(2027, 2, 28)) == "2027-02"
    assert invoice_number("2027-02", 42) == "INV-202702-000042"


@pytest.mark.parametrize("text, expected", [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                            ("90m", timedelta(minutes=90)), ("45s", timedelta(seconds=45))])
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


def test_durations_default_to_the_rules_and_refuse_nonsense():
    assert BillingDurations().activation_grace == timedelta(days=30)
    assert BillingDurations(rbi_processing="2d").rbi_processing == timedelta(days=2)
    with pytest.raises(ValueError, match="duration"):
        BillingDurations(activation_grace="a month")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(timezone.utc)))
def test_the_last_closed_period_ended_before_the_moment_and_is_the_latest_such(moment):
    period = last_closed_period(moment)
    assert period_end(period) <= moment < period_end(next_period(period))


def test_a_line_is_priced_from_its_usage_item():
    item = UsageItem(project="web", deployment="Cluster0", service="Atlas", sku="M10", start_date=date(2027, 1, 1),
                     end_date=date(2027, 1, 31), quantity=Decimal("744"), unit="hours", unit_price=Decimal("0.08"))
    [line] = build_cloud_invoice([item]).lines
    assert line.model_dump() == item.model_dump() | {"amount": Decimal("59.52")}
    [tiny] = build_cloud_invoice([item.model_copy(update={"quantity": Decimal("0.001"),
                                                          "unit_price": Decimal("-1")})]).lines
    assert str(tiny.amount) == "0.00"  # rounds to zero: never "-0.00"


def test_usage_that_is_not_finite_is_refused():
    with pytest.raises(ValueError) as err:
        price_usage([("web", "Atlas", Decimal("NaN"), Decimal("1"))])
    assert str(err.value) == "usage amounts must be finite, got a total of NaN"
    priced = price_usage([("web", "Atlas", Decimal("2"), Decimal("0.125")), ("api", "Atlas", Decimal("1"),
                                                                            Decimal("0.10"))])
    assert (priced.amounts, priced.usage) == ([Decimal("0.25"), Decimal("0.10")], Decimal("0.35"))
    assert priced.by_project == {"web": Decimal("0.25"), "api": Decimal("0.10")}
    assert priced.by_service == {"Atlas": Decimal("0.35")}
    assert price_usage([]).usage == Decimal(0)


@pytest.mark.parametrize("moment, before, closed", [
    (datetime(2027, 3, 1, tzinfo=timezone.utc), "2027-02", "2027-02"),  # a month-end runs at 00:00 on the 1st
    (datetime(2027, 3, 15, 12, tzinfo=timezone.utc), "2027-03", "2027-02"),
    (datetime(2027, 1, 1, tzinfo=timezone.utc), "2026-12", "2026-12"),
    (datetime(2027, 2, 28, 23, 59, tzinfo=timezone.utc), "2027-02", "2027-01"),
    (datetime(2027, 3, 2, tzinfo=timezone.utc), "2027-03", "2027-02"),  # the 1st has ended: March is under way
])
def test_the_period_before_a_moment_and_the_last_closed_one(moment, before, closed):
    assert period_before(moment) == before
    assert last_closed_period(moment) == closed


def test_period_arithmetic_at_the_year_end():
    assert next_period("2026-12") == "2027-01" and next_period("2027-01") == "2027-02"
    assert next_period("2027-11") == "2027-12"
    assert last_day_of("2028-02") == date(2028, 2, 29) and last_day_of("2027-12") == date(2027, 12, 31)
    assert first_day_of("2027-12") == date(2027, 12, 1)
    assert period_end("2027-12") == datetime(2028, 1, 1, tzinfo=timezone.utc)
    assert period_of(date(987, 1, 5)) == "0987-01"


def test_a_tax_invoice_is_numbered_in_the_same_sequence():
    assert tax_invoice_number("2027-02", 42) == "TAX-202702-000042"
    assert invoice_number("2027-12", 1234567) == "INV-202712-1234567"
