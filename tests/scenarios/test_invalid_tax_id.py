"""SPEC A2 at every door: a tax ID the registry refuses (a right-looking ID with a wrong check digit) is refused by
the service's input, the `billing set-billing-profile` command and the simulator, naming the field, and nothing is
written. A registry that accepted any non-empty ID fails each of these tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from sqlmodel import select

from billing.profiles import BillingProfileIn, OrganizationIn
from services.client import BillingClient
from starter import cli
from starter.scenario import load_yaml
from store.gateway import SandboxGateway
from store.tables import BillingProfile, BillingProfileChange, Organization
from tests.billing.test_invalid_tax_id import INVALID_IDS
from tests.factories import card, org_with_method

SCENARIO = Path(__file__).parent / "billing_profile_edit.yaml"
BERLIN = {"country": "DE", "state": "Berlin", "city": "Berlin", "address_line1": "1 Hauptstr.", "postal_code": "10115"}
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the door, not the database


def _tax_id_error(err: ValidationError) -> tuple:
    [error] = err.errors()
    return error["loc"][-1], INVALID_IDS["DE"] in str(err) or "check digit" in error["msg"]


@SQLITE
async def test_the_service_refuses_an_organization_with_an_invalid_tax_id_and_writes_nothing(db):
    client = BillingClient(None, db, SandboxGateway(db))  # refused before Temporal is reached
    raw = {"id": "berlin", "owners": ["owner@berlin.test"], "billing_profile": BERLIN | {"tax_id": INVALID_IDS["DE"]}}
    with pytest.raises(ValidationError) as refused:
        await client.create_organization(OrganizationIn.model_validate(raw))
    assert _tax_id_error(refused.value) == ("tax_id", True)
    assert refused.value.errors()[0]["loc"] == ("billing_profile", "tax_id")
    with db.session() as s:
        assert s.exec(select(Organization)).all() == [] and s.exec(select(BillingProfile)).all() == []
    accepted = OrganizationIn.model_validate(raw | {"billing_profile": BERLIN | {"tax_id": "DE 136 695 976"}})
    assert accepted.billing_profile.tax_id == "DE136695976"  # the valid one, in canonical form


@SQLITE
async def test_the_service_refuses_a_profile_edit_with_an_invalid_tax_id_and_changes_nothing(db):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card())
    client = BillingClient(None, db, gateway)
    with pytest.raises(ValidationError) as refused:
        await client.set_billing_profile("acme", BillingProfileIn.model_validate(BERLIN | {"tax_id": INVALID_IDS["DE"]}),
                                         changed_by="ops@acme.test")
    assert _tax_id_error(refused.value) == ("tax_id", True)
    with db.session() as s:
        assert (s.get(BillingProfile, "acme").country, s.get(BillingProfile, "acme").tax_id) == ("US", None)
        assert s.exec(select(BillingProfileChange)).all() == []


@SQLITE
async def test_the_cli_refuses_an_invalid_tax_id_naming_it_and_changes_nothing(db, monkeypatch, capsys):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card())

    async def client():
        return BillingClient(None, db, gateway)

    monkeypatch.setattr(cli, "_client", client)
    args = ["set-billing-profile", "acme", "--country", "DE", "--state", "Berlin", "--city", "Berlin",
            "--postal-code", "10115", "--tax-id", INVALID_IDS["DE"], "--changed-by", "ops@acme.test"]
    assert await cli._run(cli._parser().parse_args(args)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "billing_profile.tax_id" in captured.err and "check digit" in captured.err
    with db.session() as s:
        assert s.get(BillingProfile, "acme").tax_id is None
        assert s.exec(select(BillingProfileChange)).all() == []


@pytest.mark.parametrize("where", ["orgs", "events"])
def test_the_simulator_refuses_a_scenario_with_an_invalid_tax_id_and_writes_nothing(tmp_path, where):
    data = load_yaml(SCENARIO.read_text())
    if where == "orgs":
        data["orgs"]["acme"]["billing_profile"]["tax_id"] = INVALID_IDS["DE"]
        field = "orgs.acme.billing_profile.tax_id"
    else:
        data["events"][0]["billing_profile"]["tax_id"] = INVALID_IDS["DE"]
        field = "events[0].billing_profile.tax_id"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    database = tmp_path / "untouched.db"
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "simulate", str(path), "--json",
                                "--database-url", f"sqlite:///{database}"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and field in completed.stderr and "check digit" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not database.exists()  # refused before anything was started or written
