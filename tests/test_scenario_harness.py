"""Every simulated scenario balances: the suite simulates only through tests.scenario_harness.run_scenario."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent


def test_every_test_simulates_through_the_harness_that_checks_the_ledger():
    direct = [f"{path.relative_to(TESTS)}:{number}"
              for path in sorted(TESTS.rglob("*.py")) if path.name not in {"scenario_harness.py", Path(__file__).name}
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"\bsimulate\(", line) and "run_scenario" not in line and not line.lstrip().startswith("#")]
    assert direct == [], "simulate through tests.scenario_harness.run_scenario, which checks the ledger"
