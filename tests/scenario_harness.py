"""How the suite runs a scenario: through the real simulator, then the checks every scenario must pass: the ledger
balances, and no card number, CVC or activation code is in any workflow history's decoded payloads.

Every test that simulates goes through `run_scenario` (tests/scenarios/test_scenario_harness.py keeps it that way), so the
money invariant is asserted for every simulated scenario in the suite, on SQLite and PostgreSQL (`new_database`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from starter.scenario import Scenario, load_scenario
from starter.simulate import simulate
from tests.accounting import assert_every_cent_accounted
from tests.leaks import assert_no_secrets, card_secrets, cvcs

SCENARIOS = Path(__file__).parent / "scenarios"


async def run_scenario(scenario: Scenario | str | Path, database_url: str | None,
                       history_sink: dict[str, WorkflowHistory] | None = None,
                       gateway_service: bool = False) -> dict[str, Any]:
    """Simulate a scenario (a parsed one, or a file, relative to tests/scenarios/) on an empty database and check
    its ledger. The database is always named: tests pass the `new_database` fixture's (SQLite and PostgreSQL);
    None is the simulator's own temporary SQLite file (tools such as tests.record_histories). `gateway_service`:
    through a sandbox gateway service of the run's own, as `billing simulate` does."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(str(SCENARIOS / scenario))
    histories: dict[str, WorkflowHistory] = {} if history_sink is None else history_sink
    output = await simulate(scenario, database_url=database_url, history_sink=histories,
                            gateway_service=gateway_service)
    assert_every_cent_accounted(output)
    assert_no_secrets(histories.values(), card_secrets(scenario), cvcs(scenario))  # A6, D2: in decoded payloads
    return output


def closed_invoices(output: dict[str, Any]) -> list[dict[str, Any]]:
    """The output's invoices without each organization's current cycle (its PENDING invoice, G0)."""
    return [invoice for invoice in output["invoices"] if invoice["status"] != "PENDING"]
