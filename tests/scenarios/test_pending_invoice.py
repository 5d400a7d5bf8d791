"""G0: the current cycle is one PENDING invoice per organization, its running total following the usage received."""

from __future__ import annotations

import pytest

from starter.scenario import load_yaml, parse_scenario
from tests.scenario_harness import run_scenario

SCENARIO = """
start: 2025-03-01T00:00:00Z
until: {until}
orgs:
  acme:
    owners: [owner@acme.test]
    billing_profile: {{country: US, state: NY, city: New York, address_line1: 1 Main St, postal_code: "10001"}}
    payment_method: {{type: card, number: "4242424242424242", exp: "12/30", cvc: "123", name: Ada Lovelace}}
usage:
  - {{org: acme, project: web, service: Atlas Dedicated, sku: M10, from: 2025-03-01, to: 2025-03-10,
     quantity: "1000", unit: hours, unit_price: "0.10"}}
  - {{org: acme, project: web, service: Atlas Dedicated, sku: M10, from: 2025-03-10, to: 2025-04-01,
     quantity: "500", unit: hours, unit_price: "0.10"}}
  - {{org: acme, project: web, service: Atlas Dedicated, sku: M10, from: 2025-04-05, to: 2025-04-10,
     quantity: "200", unit: hours, unit_price: "0.10"}}
"""


async def _invoices(until: str, database_url: str) -> list[tuple]:
    output = await run_scenario(parse_scenario(load_yaml(SCENARIO.format(until=until))), database_url)
    return [(i["number"], i["period"], i["status"], i["usage"], i["total"], i["amount_due"], i["at"])
            for i in output["invoices"]]


@pytest.mark.parametrize("until, expected", [
    ("2025-03-05T00:00:00Z", [("2025-03", "PENDING", "100.00", "100.00", "100.00", "2025-03-01T00:00:00Z")]),
    ("2025-03-20T00:00:00Z", [("2025-03", "PENDING", "150.00", "150.00", "150.00", "2025-03-01T00:00:00Z")]),
    ("2025-04-02T00:00:00Z", [("2025-03", "PAID", "150.00", "150.00", "0.00", "2025-04-01T00:00:00Z"),
                              ("2025-04", "PENDING", "0.00", "0.00", "0.00", "2025-04-01T00:00:00Z")]),
    ("2025-04-20T00:00:00Z", [("2025-03", "PAID", "150.00", "150.00", "0.00", "2025-04-01T00:00:00Z"),
                              ("2025-04", "PENDING", "20.00", "20.00", "20.00", "2025-04-01T00:00:00Z")]),
])
async def test_the_current_cycle_is_one_pending_invoice_whose_running_total_follows_the_usage(until, expected,
                                                                                              new_database):
    invoices = await _invoices(until, new_database())
    assert [invoice[1:] for invoice in invoices] == expected
    assert [invoice[2] for invoice in invoices].count("PENDING") == 1


async def test_month_end_closes_the_pending_invoice_in_place_keeping_its_number(new_database):
    [(pending_number, *_)] = await _invoices("2025-03-20T00:00:00Z", new_database())
    (closed_number, period, status, *_), _next = await _invoices("2025-04-02T00:00:00Z", new_database())
    assert (closed_number, period, status) == (pending_number, "2025-03", "PAID")
