"""Editing the billing address and tax ID (SPEC A1-A2): validated as at creation, audited, and used by the next
invoices (C1: a valid VAT ID is reverse-charged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from store.db import Database
from store.gateway import SandboxGateway
from store.tables import BillingContactChange, BillingProfile, BillingProfileChange
from starter import cli
from services.client import BillingClient
from starter.scenario import ScenarioError, load_yaml, parse_scenario
from tests.scenario_harness import closed_invoices, run_scenario
from tests.factories import card, org_with_method

SCENARIO = Path(__file__).parents[1] / "scenarios" / "billing_profile_edit.yaml"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_vat_id_set_in_february_removes_vat_from_february_on_and_is_audited(new_database):
    url = new_database()
    output = await run_scenario(parse_scenario(load_yaml(SCENARIO.read_text())), database_url=url)
    taxes = {i["period"]: (i["tax"], [(t["name"], t["rate"]) for t in i["tax_lines"]]) for i in closed_invoices(output)}
    assert taxes == {"2025-01": ("19.00", [("VAT", "0.19")]), "2025-02": ("0.00", [])}
    assert output["notices"] == []
    database = Database(url)
    try:
        with database.session() as s:
            [change] = s.exec(select(BillingProfileChange)).all()
            assert (change.org_id, change.changed_by, json.loads(change.changes)) == (
                "acme", "simulator", {"tax_id": [None, "DE136695976"]})  # only what changed
            assert s.get(BillingProfile, "acme").tax_id == "DE136695976"
            assert s.exec(select(BillingContactChange)).all() == []
    finally:
        database.dispose()


@pytest.mark.parametrize("profile", [
    {"country": "DE", "tax_id": "DE123456789"},  # bad check digit
    {"country": "US", "state": "NY", "tax_id": "123456789"},  # no tax ID on a US profile (A2)
])
def test_an_invalid_profile_is_refused_naming_the_field(tmp_path, profile):
    data = load_yaml(SCENARIO.read_text())
    data["events"][0]["billing_profile"] |= profile
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(data)
    assert refused.value.field == "events[0].billing_profile.tax_id"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "simulate", str(path), "--json"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and "events[0].billing_profile.tax_id" in completed.stderr
    assert "Traceback" not in completed.stderr


@SQLITE
async def test_cli_set_billing_profile_validates_audits_and_repeats_harmlessly(db, monkeypatch, capsys):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card())  # a US profile: New York

    async def client():
        return BillingClient(None, db, gateway)

    monkeypatch.setattr(cli, "_client", client)
    parser = cli._parser()
    german = ["set-billing-profile", "acme", "--country", "DE", "--state", "Berlin", "--city", "Berlin",
              "--postal-code", "10115", "--tax-id", "DE 136 695 976", "--changed-by", "ops@acme.test"]
    assert await cli._run(parser.parse_args(german)) == 0
    assert capsys.readouterr().out == "city, country, postal_code, state, tax_id changed\n"
    assert await cli._run(parser.parse_args(german)) == 0  # the same again: a notice, nothing changes
    assert capsys.readouterr().out.startswith("nothing to change")
    assert await cli._run(parser.parse_args(["set-billing-profile", "acme", "--country", "US", "--state", "NY"])) == 2
    assert "billing_profile.tax_id" in capsys.readouterr().err  # the German VAT ID is refused on a US profile
    with db.session() as s:
        profile = s.get(BillingProfile, "acme")
        assert (profile.country, profile.tax_id) == ("DE", "DE136695976")
        [change] = s.exec(select(BillingProfileChange)).all()
        assert change.changed_by == "ops@acme.test"
        assert json.loads(change.changes)["tax_id"] == [None, "DE136695976"]
        assert "billing_email" not in json.loads(change.changes)
