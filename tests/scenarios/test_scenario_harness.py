"""Every simulated scenario balances: the suite simulates only through tests.scenario_harness.run_scenario, and every
test that does runs on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
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


def _simulating_tests(tree: ast.Module) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    """The module's test functions that call run_scenario, themselves or through the module's helpers."""
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    calls = {name: {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
             for name, node in functions.items()}
    simulating = {name for name, called in calls.items() if "run_scenario" in called}
    while grown := {name for name, called in calls.items() if called & simulating} - simulating:
        simulating |= grown
    return [functions[name] for name in sorted(simulating) if name.startswith("test_")]


def test_every_simulating_test_runs_on_both_databases():
    """The `new_database` fixture is parametrized over SQLite and PostgreSQL: a test that simulates without it
    would run on one database only."""
    found, missing = [], []
    for path in sorted(TESTS.rglob("test_*.py")):
        for test in _simulating_tests(ast.parse(path.read_text())):
            found.append(test.name)
            if "new_database" not in [arg.arg for arg in test.args.args]:
                missing.append(f"{path.relative_to(TESTS)}::{test.name}")
    assert len(found) > 30 and missing == []


@pytest.mark.parametrize("name", sorted(str(p.relative_to(SCENARIOS)) for p in SCENARIOS.rglob("*.yaml")))
async def test_every_scenario_file_runs_and_balances(name, new_database):
    """Every scenario in tests/scenarios/, dated in the past or the future, runs to an output whose ledger
    balances (run_scenario checks it) and which notes every year it bills in its own dates."""
    output = await run_scenario(name, new_database())
    start_year = load_scenario(str(SCENARIOS / name)).start.year
    assert all(int(invoice["period"][:4]) >= start_year for invoice in output["invoices"])

