"""The fault suite (`make test-faults`): one month-end of 1,000 organizations survives worker kills, a dev server
restart, a failing gateway, a database cut and doubled triggers and webhooks with nothing lost or charged twice
(tests/faults/harness.py). Its figures go to tests/artifacts/faults.json; `python -m tests.faults.report` prints
them."""

from __future__ import annotations

import os

import pytest

from tests.faults import harness

ORGS = int(os.environ.get("FAULTS_ORGS", "1000"))
KILLS = int(os.environ.get("FAULTS_KILLS", "10"))


@pytest.mark.timeout(1200)
async def test_month_end_survives_the_faults_with_nothing_lost_or_charged_twice():
    results = await harness.run(orgs=ORGS, kills=KILLS)
    harness.write(results)
    # Everything happened that the suite promises to survive.
    assert results["kills"] == KILLS and results["worker_starts"] >= KILLS
    assert results["dev_server_restarts"] == 1 and results["database_cuts"] == 1
    assert results["month_end_triggers"] >= 4
    assert results["faults"]["error_500"] and results["faults"]["timeout_before"] and results["faults"]["timeout_after"]
    # Nothing lost, nothing twice.
    assert (results["invoices"], results["missing_invoices"], results["duplicate_invoices"]) == (ORGS, 0, 0)
    assert results["not_at_rest"] == 0, results["timeline"]
    assert results["paid"] + results["failed_with_email"] == results["payable_invoices"] > 0
    assert results["double_charges"] == 0 and results["paid_without_one_charge"] == 0
    assert results["charges_without_paid_invoice"] == 0 and results["charges"] == results["paid"]
    assert results["ledger_matches_payments"] and results["invariant"] == "holds"
    assert results["deadline_met"]
