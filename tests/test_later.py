"""No test depends on today's date: a sample of the date-sensitive tests passes as if it were a year later.

`make test-later` runs all of them shifted; this runs a few on every `make test`, in a child pytest with
BILLING_TEST_SHIFT_DAYS=365 (tests/time_shift.py), so a test that starts reading today's date fails here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The clocks themselves; time-skipping tests that sleep until named business days (D9's day 31 and day 61, D2's
# 30-day grace); a scenario simulated by the CLI in a Python child (its own test server) and one in this process
# whose dates are computed from today's.
SHIFTED = [
    "tests/test_time_shift.py",
    "tests/workflows/test_overdue_boundary.py::test_suspended_on_day_31_not_day_30_and_locked_on_day_61_not_day_60",
    "tests/workflows/test_overdue_boundary.py::test_overdue_counts_from_the_invoice_date_not_the_first_failed_charge",
    "tests/workflows/test_activation.py::test_code_applied_on_day_29_means_no_card_charge[sqlite]",
    "tests/scenarios/test_simulate.py::test_declined_card_fails_then_update_and_retry_pay_exactly_once[sqlite]",
    "tests/scenarios/test_simulate_any_date.py::"
    "test_a_scenario_dated_last_year_and_next_year_bills_the_same_modulo_dates[sqlite-card_declined_retry.yaml]",
]
EXPECTED = 8  # test_time_shift.py holds 3; each other entry names one test


@pytest.mark.timeout(600)
def test_the_date_sensitive_tests_pass_a_year_later():
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["BILLING_TEST_SHIFT_DAYS"] = "365"
    completed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *SHIFTED],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else completed.stderr
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-2000:]
    assert re.fullmatch(rf"{EXPECTED} passed in .*", summary), summary
