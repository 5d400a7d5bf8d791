"""How the suite runs a scenario: through the real simulator, then the ledger check every scenario must pass.

Every test that simulates goes through `run_scenario` (tests/scenarios/test_scenario_harness.py keeps it that way), so the
money invariant is asserted for every simulated scenario in the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from starter.scenario import Scenario, load_scenario
from starter.simulate import simulate
from tests.accounting import assert_every_cent_accounted

SCENARIOS = Path(__file__).parent / "scenarios"


async def run_scenario(scenario: Scenario | str | Path, database_url: str | None = None,
                       history_sink: dict[str, WorkflowHistory] | None = None) -> dict[str, Any]:
    """Simulate a scenario (a parsed one, or a file, relative to tests/scenarios/) and check its ledger."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(str(SCENARIOS / scenario))
    output = await simulate(scenario, database_url=database_url, history_sink=history_sink)
    assert_every_cent_accounted(output)
    return output


def closed_invoices(output: dict[str, Any]) -> list[dict[str, Any]]:
    """The output's invoices without each organization's current cycle (its PENDING invoice, G0)."""
    return [invoice for invoice in output["invoices"] if invoice["status"] != "PENDING"]
