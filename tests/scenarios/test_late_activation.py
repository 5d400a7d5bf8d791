"""SPEC D1 x D2: every subscription type with its activation code applied at the start, inside the grace period
after a month-end, after a missed grace period, or never; the term's months count from the term start."""

from __future__ import annotations

from typing import Any

import pytest

from starter.scenario import parse_scenario
from tests.scenario_harness import closed_invoices, run_scenario

TYPES = ["elastic", "flex_commitment", "monthly_commitment", "marketplace", "prepaid"]
# First usage on 2027-01-20: the 30 days of use end on 2027-02-19, after January's month-end.
APPLIED = {"at_start": None, "inside_grace": "2027-02-10T10:00:00Z", "after_grace": "2027-03-10T10:00:00Z",
           "never": None}


def late_activation_scenario(subscription_type: str, applied: str) -> dict[str, Any]:
    """A three-month term of 3,000.00 (1,000.00 a month) with usage 600 / 1,300 / 1,500 (SPEC D1's example)."""
    def usage(start: str, end: str, amount: str) -> dict[str, Any]:
        return {"org": "acme", "project": "web", "service": "Atlas Dedicated", "sku": "ATLAS_AWS_INSTANCE_M40",
                "from": start, "to": end, "quantity": amount, "unit": "hours", "unit_price": "1.00"}

    at = APPLIED[applied]
    return {
        "start": "2027-01-01T00:00:00Z", "until": "2027-04-02T00:00:00Z",
        "orgs": {"acme": {
            "owners": ["owner@acme.test"],
            "billing_profile": {"country": "US", "state": "NY", "city": "New York", "address_line1": "1 Main St",
                                "postal_code": "10001"},
            "payment_method": {"type": "card", "number": "4242424242424242", "exp": "12/30", "cvc": "123",
                               "name": "Ada Lovelace"},
            "subscription": {"type": subscription_type, "term_start": "2027-01-01", "term_months": 3,
                             "commitment": "3000.00", "currency": "USD",
                             "activation_code": "applied" if applied == "at_start" else "pending"}}},
        "usage": [usage("2027-01-20", "2027-02-01", "600"), usage("2027-02-01", "2027-03-01", "1300"),
                  usage("2027-03-01", "2027-04-01", "1500")],
        "events": [] if at is None else [{"at": at, "do": "apply_activation_code", "org": "acme"}],
    }


def _cloud(output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["period"]: i for i in closed_invoices(output) if i["kind"] == "cloud"}


@pytest.mark.parametrize("applied", list(APPLIED))
@pytest.mark.parametrize("subscription_type", TYPES)
async def test_every_month_of_the_term_settles_whenever_the_code_is_applied(subscription_type, applied, new_database):
    output = await run_scenario(parse_scenario(late_activation_scenario(subscription_type, applied)), new_database())
    cloud = _cloud(output)
    assert sorted(cloud) == ["2027-01", "2027-02", "2027-03"]
    assert [cloud[p]["usage"] for p in sorted(cloud)] == ["600.00", "1300.00", "1500.00"]
    assert all(i["status"] != "PENDING" for i in cloud.values())


@pytest.mark.parametrize("applied, billed", [
    ("at_start", ["1000.00", "1000.00", "1400.00"]),    # D1's worked example: 400 banked, 300 then 100 used
    # Applied in time: January, held during the grace period, is billed under the commitment when the code arrives.
    ("inside_grace", ["1000.00", "1000.00", "1400.00"]),
    # A missed grace period: January and February were charged at usage and banked nothing; they are months 1
    # and 2 of the term all the same, so March is month 3 of 3 and its overage is billed on top.
    ("after_grace", ["600.00", "1300.00", "1500.00"]),
])
async def test_monthly_commitment_months_count_from_the_term_start(applied, billed, new_database):
    output = await run_scenario(parse_scenario(late_activation_scenario("monthly_commitment", applied)), new_database())
    cloud = _cloud(output)
    assert [cloud[p]["billed_usage"] for p in sorted(cloud)] == billed
    assert cloud["2027-03"]["status"] == "INVOICED"
    # SPEC D5: every month billed under the subscription has its tax invoice.
    taxed = sorted(i["period"] for i in output["invoices"] if i["kind"] == "tax")
    assert taxed == [p for p in sorted(cloud) if cloud[p]["status"] == "INVOICED"]


@pytest.mark.parametrize("applied", ["at_start", "inside_grace", "after_grace"])
async def test_flex_commitment_true_up_counts_the_months_billed_before_activation(applied, new_database):
    output = await run_scenario(parse_scenario(late_activation_scenario("flex_commitment", applied)), new_database())
    cloud = _cloud(output)
    # 600 + 1,300 + 1,500 = 3,400 used of 3,000: nothing unused to charge in the last month.
    assert [cloud[p]["billed_usage"] for p in sorted(cloud)] == ["600.00", "1300.00", "1500.00"]
    assert cloud["2027-03"]["status"] == "INVOICED"
