"""A scenario through the sandbox gateway service (`billing gateway serve`, over HTTP) bills exactly what it bills
through the in-process sandbox gateway: every request carries the business clock's `at`, and the India outcomes
arrive as signed webhooks at the instants the simulated issuer settles them (SPEC E3-E6, I5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.scenario_harness import run_scenario

# Invoice numbers follow the order in which concurrent settlements commit, and the simulated clock runs at wall
# speed between its jumps (an e-mail sent a second later): neither is what this test compares.
NUMBERED = {"number", "invoice", "cloud_invoice"}


def _comparable(output: dict[str, Any]) -> dict[str, list[str]]:
    def row_of(row: dict[str, Any]) -> str:
        return json.dumps({k: (v[:16] if (k == "at" or k.endswith("_at")) and v else v) for k, v in row.items() if k not in NUMBERED},
                          sort_keys=True)
    return {section: sorted(row_of(row) for row in rows) for section, rows in output.items()
            if isinstance(rows, list)}


@pytest.mark.parametrize("name", ["rbi/authorize_revoke_reverse.yaml", "card_declined_retry.yaml"])
async def test_a_scenario_bills_the_same_through_the_gateway_service(name, new_database):
    over_http = await run_scenario(name, new_database(), gateway_service=True)
    in_process = await run_scenario(name, new_database())
    assert over_http["payments"] and _comparable(over_http) == _comparable(in_process)
