"""Events that find nothing to do are harmless (SCENARIOS.md `notices`): a double click on RETRY, and every event
repeated at once and again late, gives the same invoices and payments as acting once, a notice for each repeat, and
exit 0. Only a malformed scenario exits 2, and no failure ever reaches the user as a traceback."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from starter import cli
from services.client import BillingError
from starter.scenario import load_yaml, parse_scenario
from tests.scenario_harness import run_scenario

ONCE = Path(__file__).parents[1] / "scenarios" / "notices" / "every_event_once.yaml"
LATE = datetime(2025, 2, 11, 12, 0, tzinfo=timezone.utc)
ACTIONS = {"update_payment_method"}  # a new card is attached again: an action, not a repeat that finds nothing
SAME = ["invoices", "payments", "credits", "mandates", "support_plans", "organizations"]


def _twice_and_late(data: dict) -> dict:
    events = []
    for event in data["events"]:
        events += [event, dict(event)]  # a double click: the same event at the same moment
    late = [dict(event, at=LATE) for event in data["events"] if event["do"] not in ACTIONS]
    return data | {"events": events + late}


def _by_business_key(output: dict) -> dict:
    """Invoice numbers follow the order in which concurrent settlements finish: compare by org, kind and period;
    and instants to the minute (a registration or a month-end may land a second later from one run to the next)."""
    key = {i["number"]: f"{i['org']}:{i['kind']}:{i['period']}" for i in output["invoices"]}
    minute = lambda stamp: stamp and stamp[:16]  # noqa: E731
    rename = {"number": key.get, "invoice": key.get, "cloud_invoice": key.get, "at": minute,
              "registered_at": minute, "revoked_at": minute}
    return {section: sorted((json.dumps({k: rename[k](v) if k in rename else v for k, v in item.items()},
                                        sort_keys=True) for item in output[section]))
            for section in SAME}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_every_event_repeated_and_late_is_a_notice_and_changes_nothing(tmp_path, new_database):
    once_data = load_yaml(ONCE.read_text())
    once = await run_scenario(parse_scenario(once_data), new_database())
    assert once["notices"] == []  # always present

    repeated = tmp_path / "repeated.yaml"
    repeated.write_text(yaml.safe_dump(_twice_and_late(once_data)))
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "simulate", str(repeated), "--json",
                                "--database-url", new_database()], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    twice = json.loads(completed.stdout)

    same, again = _by_business_key(once), _by_business_key(twice)
    for section in SAME:
        assert again[section] == same[section], section
    # No e-mail twice either (subjects carry invoice numbers, and delivery times vary by a second between runs).
    mails = [sorted((e["org"], e["kind"], e["to"]) for e in output["emails"]) for output in (once, twice)]
    assert mails[1] == mails[0]
    retried = next(i["number"] for i in twice["invoices"] if i["org"] == "retry")
    # The double click on RETRY: the first one paid, the second found nothing to do.
    assert {"at": "2025-02-03T10:00:00Z", "org": "retry", "event": "retry_payment",
            "notice": f"nothing to retry: {retried} is PAID"} in twice["notices"]
    # One notice per repeat and per late event, except for the actions that act again.
    repeats = [(_stamp(e["at"]), e["org"], e["do"]) for e in once_data["events"] if e["do"] not in ACTIONS]
    expected = sorted(repeats + [(_stamp(LATE), org, do) for _, org, do in repeats], key=lambda n: n[:2])
    assert [(n["at"], n["org"], n["event"]) for n in twice["notices"]] == expected  # by time, then organization
    assert all(n["notice"].startswith("nothing to ") for n in twice["notices"])


BAD_INVOICE = """
start: 2025-01-01T00:00:00Z
until: 2025-01-03T00:00:00Z
orgs:
  acme:
    owners: [owner@acme.test]
    billing_profile: {country: US, state: NY, city: New York, address_line1: 1 Main St, postal_code: "10001"}
events:
  - {at: 2025-01-02T00:00:00Z, do: retry_payment, org: acme, invoice: INV-209901-000001}
"""


async def test_a_refused_event_raises_in_python_naming_the_event_and_field(new_database):
    with pytest.raises(BillingError, match="no invoice 'INV-209901-000001'") as raised:
        await run_scenario(parse_scenario(load_yaml(BAD_INVOICE)), new_database())
    assert raised.value.__notes__ == ["events[0].invoice (retry_payment for acme at 2025-01-02T00:00:00Z)"]


def test_the_cli_exits_2_with_one_line_naming_the_event_never_a_traceback(tmp_path):
    path = tmp_path / "bad_invoice.yaml"
    path.write_text(BAD_INVOICE)
    completed = subprocess.run([sys.executable, "-m", "starter.cli", "simulate", str(path), "--json"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2 and completed.stdout == ""
    assert "Traceback" not in completed.stderr
    [line] = [line for line in completed.stderr.splitlines() if line.startswith("billing: error:")]
    assert line == ("billing: error: events[0].invoice (retry_payment for acme at 2025-01-02T00:00:00Z): "
                    "organization 'acme' has no invoice 'INV-209901-000001'")


async def test_the_cli_maps_an_unexpected_failure_to_exit_2_naming_what_failed(monkeypatch, capsys):
    async def broken(scenario, database_url=None, gateway_service=False):
        err = RuntimeError("the worker went away\nsecond line of detail")
        err.add_note("events[3] (pay_now for acme at 2025-02-03T10:00:00Z)")
        raise err

    monkeypatch.setattr("starter.simulate.simulate", broken)
    args = argparse.Namespace(file=str(ONCE), database_url=None)
    assert await cli._simulate(args) == cli.EXIT_INVALID
    assert capsys.readouterr().err == ("billing: error: events[3] (pay_now for acme at 2025-02-03T10:00:00Z): "
                                       "RuntimeError: the worker went away\n")
