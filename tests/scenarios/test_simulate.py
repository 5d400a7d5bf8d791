"""`billing simulate` (SCENARIOS.md): card and PayPal scenarios end to end, and refused inputs (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from starter.scenario import ScenarioError, load_scenario, parse_scenario
from tests.scenario_harness import closed_invoices, run_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"


async def _simulate(name: str, database_url: str) -> dict[str, Any]:
    return await run_scenario(load_scenario(str(SCENARIOS / name)), database_url=database_url)


def _keys(items: list[dict], *keys: str) -> list[tuple]:
    return [tuple(item[k] for k in keys) for item in items]


def test_output_document_has_every_section():
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "simulate", str(SCENARIOS / "card_paid.yaml"),
                                "--json"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout)  # stdout is the JSON document and nothing else
    assert set(output) >= {"invoices", "payments", "credits", "mandates", "support_plans", "organizations", "emails"}
    [invoice, current] = output["invoices"]
    assert current | {"kind": "cloud", "period": "2027-02", "status": "PENDING", "total": "0.00"} == current  # G0
    assert invoice | {"lines": None} == invoice | {
        "org": "acme", "kind": "cloud", "period": "2027-01", "status": "PAID", "currency": "USD", "usage": "59.52",
        "billed_usage": "59.52", "tax": "0.00", "total": "59.52", "amount_due": "0.00", "tax_lines": [],
        "lines": None}
    assert invoice["lines"][0] | {"quantity": "744", "unit_price": "0.08", "amount": "59.52"} == invoice["lines"][0]
    assert _keys(output["payments"], "invoice", "method", "status", "amount", "currency", "fx_rate", "refundable",
                 "failure_code", "at") == [
        (invoice["number"], "card", "PAID", "59.52", "USD", None, True, None, "2027-02-01T00:00:00Z")]
    assert output["organizations"] == [{"org": "acme", "status": "ACTIVE"}]
    assert _keys(output["emails"], "kind", "to") == [("payment_succeeded", ["owner@acme.test", "billing@acme.test"])]
    assert output["credits"] == output["mandates"] == output["support_plans"] == []


async def test_declined_card_fails_then_update_and_retry_pay_exactly_once(new_database):
    output = await _simulate("card_declined_retry.yaml", new_database())
    [invoice] = closed_invoices(output)
    assert invoice["status"] == "PAID" and invoice["amount_due"] == "0.00"
    assert _keys(output["payments"], "status", "failure_code", "at") == [
        ("FAILED", "card_declined", "2027-02-01T00:00:00Z"),
        ("FAILED", "card_declined", "2027-02-03T09:00:00Z"),  # a retry with the same declined card
        ("PAID", None, "2027-02-05T09:05:00Z"),               # after update_payment_method + retry_payment
    ]
    assert [p["status"] for p in output["payments"]].count("PAID") == 1
    # SPEC A3: "only send invoice e-mails to the billing e-mail" is on.
    assert _keys(output["emails"], "kind", "to") == [
        ("payment_failed", ["ap@acme.test"]), ("payment_failed", ["ap@acme.test"]),
        ("payment_succeeded", ["ap@acme.test"])]


async def test_paypal_pays_every_month(new_database):
    output = await _simulate("paypal_paid.yaml", new_database())
    # GB without a VAT number: UK VAT 20% (TAX.md).
    assert _keys(closed_invoices(output), "period", "status", "billed_usage", "tax", "total") == [
        ("2027-01", "PAID", "401.76", "80.35", "482.11"), ("2027-02", "PAID", "10.85", "2.17", "13.02")]
    assert _keys(output["payments"], "method", "status", "amount") == [("paypal", "PAID", "482.11"),
                                                                       ("paypal", "PAID", "13.02")]
    # SPEC A3: a billing e-mail with the flag off goes to it and to the owners and billing admins.
    assert output["emails"][0]["to"] == ["ap@beta.test", "owner@beta.test"]


async def test_an_organization_without_usage_gets_a_free_invoice_and_no_charge(new_database):
    scenario = yaml.safe_load((SCENARIOS / "card_paid.yaml").read_text())
    scenario["usage"] = []
    output = await run_scenario(parse_scenario(scenario), new_database())
    assert _keys(closed_invoices(output), "status", "total") == [("FREE", "0.00")]
    assert output["payments"] == [] and output["emails"] == []


def _scenario_with(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load((SCENARIOS / "card_paid.yaml").read_text())
    org = data["orgs"]["acme"]
    for path, value in changes.items():
        target = org
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return data


@pytest.mark.parametrize("changes, field, words", [
    ({"payment_method__number": "4242424242424241"}, "orgs.acme.payment_method.number", "check digit"),
    ({"payment_method__number": "424242424242424"}, "orgs.acme.payment_method.number", "16 digits"),
    ({"payment_method__number": "378282246310005", "payment_method__cvc": "123"},
     "orgs.acme.payment_method.cvc", "4 digits"),
    ({"payment_method__cvc": "1234"}, "orgs.acme.payment_method.cvc", "3 digits"),
    ({"payment_method__exp": "12/26"}, "orgs.acme.payment_method.exp", "expired"),
    ({"payment_method__exp": "13/30"}, "orgs.acme.payment_method.exp", "month"),
    ({"payment_method__name": " "}, "orgs.acme.payment_method.name", "required"),
    ({"billing_profile__country": "XX"}, "orgs.acme.billing_profile.country", "ISO 3166"),
    ({"billing_profile__state": "ZZ"}, "orgs.acme.billing_profile.state", "US state"),
    ({"billing_profile__tax_id": "123456789"}, "orgs.acme.billing_profile.tax_id", "US"),
    ({"billing_profile__postal_code": ""}, "orgs.acme.billing_profile.postal_code", "required"),
    ({"owners": ["not-an-email"]}, "orgs.acme.owners", "e-mail"),
])
def test_bad_input_names_the_field(changes, field, words):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_scenario_with(**changes))
    assert err.value.field.startswith(field), err.value
    assert words.lower() in err.value.message.lower()
    assert "4242424242424241" not in str(err.value) and "424242424242424" not in str(err.value)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["usage"][0].update(org="nobody"), "usage[0].org"),
    (lambda d: d["usage"][0].update(quantity=1.5), "usage[0].quantity"),
    (lambda d: d.update(until="2026-12-01T00:00:00Z"), "until"),
    (lambda d: d.update(events=[{"at": "2027-01-05T00:00:00Z", "do": "change_support_plan", "org": "acme", "plan": "gold"}]),
     "events[0].plan"),
    (lambda d: d.update(events=[{"at": "2027-01-05T00:00:00Z", "do": "teleport", "org": "acme"}]), "events[0]"),
    (lambda d: d.update(start="yesterday"), "start"),
    (lambda d: d["orgs"]["acme"].update(colour="red"), "orgs.acme.colour"),
])
def test_malformed_scenario_names_the_field(mutate, field):
    data = _scenario_with()
    mutate(data)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert err.value.field.startswith(field), err.value


@pytest.mark.parametrize("changes, field", [
    ({"payment_method__number": "4242424242424241"}, "orgs.acme.payment_method.number"),        # Luhn
    ({"payment_method__number": "378282246310005"}, "orgs.acme.payment_method.cvc"),            # Amex CVC is 4
    ({"payment_method__exp": "11/26"}, "orgs.acme.payment_method.exp"),                         # past expiry
    ({"billing_profile__tax_id": "123456789"}, "orgs.acme.billing_profile.tax_id"),           # US + tax ID
    ({"billing_profile__country": "CA", "billing_profile__state": "BC",
      "billing_profile__tax_id": "123456789RT0001"}, "orgs.acme.billing_profile.tax_id"),   # bad check digit
    ({"billing_profile__state": "ZZ"}, "orgs.acme.billing_profile.state"),
    ({"billing_profile__postal_code": None}, "orgs.acme.billing_profile.postal_code"),
])
def test_cli_exits_2_naming_the_field_and_writes_nothing(tmp_path, changes, field):
    bad = _scenario_with(**changes)
    if bad["orgs"]["acme"]["billing_profile"].get("postal_code") is None:
        del bad["orgs"]["acme"]["billing_profile"]["postal_code"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    database = tmp_path / "untouched.db"
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "simulate", str(path), "--json",
                                "--database-url", f"sqlite:///{database}"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert field in completed.stderr
    assert "4242424242424241" not in completed.stderr and completed.stdout == ""
    assert not database.exists()  # refused before anything was started or written


@pytest.mark.parametrize("args, tax, lines", [
    (["--country", "IE", "--tax-id", "IE6388047V", "--product", "atlas"], "230.00", [("VAT", "0.23", "230.00")]),
    (["--country", "CA", "--state", "BC", "--tax-id", "123456782RT0001", "--product", "atlas"], "70.00",
     [("PST", "0.07", "70.00")]),
    (["--country", "GB", "--product", "flex_consulting"], "0.00", []),
])
def test_tax_quote_prints_the_tax_lines(args, tax, lines):
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "tax", "quote", *args, "--amount", "1000.00"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    quote = json.loads(completed.stdout)
    assert quote["tax"] == tax and Decimal(quote["total"]) == Decimal("1000.00") + Decimal(tax)
    assert [(t["name"], t["rate"], t["amount"]) for t in quote["tax_lines"]] == lines


def test_tax_quote_refuses_a_bad_tax_id_naming_it():
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "tax", "quote", "--country", "DE", "--tax-id",
                                "DE136695975", "--product", "atlas", "--amount", "10"], capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 2 and completed.stderr.startswith("billing: error: tax_id:")
