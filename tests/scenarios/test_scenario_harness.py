"""Every simulated scenario balances: the suite simulates only through tests.scenario_harness.run_scenario."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from starter.scenario import load_scenario
from tests.scenario_harness import SCENARIOS, run_scenario

TESTS = Path(__file__).parents[1]


def test_every_test_simulates_through_the_harness_that_checks_the_ledger():
    direct = [f"{path.relative_to(TESTS)}:{number}"
              for path in sorted(TESTS.rglob("*.py")) if path.name not in {"scenario_harness.py", Path(__file__).name}
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"\bsimulate\(", line) and "run_scenario" not in line and not line.lstrip().startswith("#")]
    assert direct == [], "simulate through tests.scenario_harness.run_scenario, which checks the ledger"


@pytest.mark.parametrize("name", sorted(str(p.relative_to(SCENARIOS)) for p in SCENARIOS.rglob("*.yaml")))
async def test_every_scenario_file_runs_and_balances(name):
    """Every scenario in tests/scenarios/, dated in the past or the future, runs to an output whose ledger
    balances (run_scenario checks it) and which notes every year it bills in its own dates."""
    output = await run_scenario(name)
    start_year = load_scenario(str(SCENARIOS / name)).start.year
    assert all(int(invoice["period"][:4]) >= start_year for invoice in output["invoices"])

