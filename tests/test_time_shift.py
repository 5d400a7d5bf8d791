"""The clocks a test reads under BILLING_TEST_SHIFT_DAYS (tests/time_shift.py): each is that many days ahead of the
wall clock, and the business clock is not. Run with no shift (`make test`: 0 days) and shifted (`make test-later`,
and tests/test_later.py: a year)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

from starter.processes import binary
from tests.conftest import BUSINESS_START
from tests.scenarios.test_simulate_any_date import _years_apart
from tests.time_shift import real_now, shift_days

# A test's own work between two readings of different clocks stays well under this.
CLOSE = timedelta(minutes=1)

_CHILD = """
import asyncio, json, os, sys
from datetime import date, datetime, timezone
from temporalio.testing import WorkflowEnvironment

async def main():
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=sys.argv[1])
    try:
        server = await env.get_current_time()
    finally:
        await env.shutdown()
    print(json.dumps({"now": datetime.now(timezone.utc).isoformat(), "today": date.today().isoformat(),
                      "server": server.isoformat()}))

asyncio.run(main())
sys.stdout.flush()
os._exit(0)  # as starter/cli.py: the Temporal core's threads may outlive the interpreter's finalization
"""


def _shifted(moment: datetime) -> datetime:
    return moment + timedelta(days=shift_days())


def test_python_reads_the_shifted_date():
    expected = _shifted(real_now())
    assert abs(datetime.now(timezone.utc) - expected) < CLOSE
    assert date.today() == expected.astimezone().date()
    # A date the suite computes from today's moves with it: the scenarios' "a later year" stays later.
    assert 2026 + _years_apart(2026, past=False) > expected.year
    assert 2026 + _years_apart(2026, past=True) < expected.year


async def test_the_time_skipping_server_is_shifted_and_the_business_clock_is_not(time_skipping_env):
    expected = _shifted(real_now())
    server = await time_skipping_env.clock.env.get_current_time()
    assert abs(server - expected) < CLOSE
    assert abs(await time_skipping_env.get_current_time() - BUSINESS_START) < CLOSE
    assert abs(timedelta(seconds=time_skipping_env.clock.offset_seconds) - (expected - BUSINESS_START)) < CLOSE


def test_a_python_child_and_the_test_server_it_starts_are_shifted_too():
    completed = subprocess.run([sys.executable, "-c", _CHILD, binary("temporal-test-server")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    child = json.loads(completed.stdout)
    expected = _shifted(real_now())
    assert abs(datetime.fromisoformat(child["now"]) - expected) < CLOSE
    assert abs(datetime.fromisoformat(child["server"]) - expected) < CLOSE
    assert abs(date.fromisoformat(child["today"]) - expected.astimezone().date()) <= timedelta(days=1)  # midnight
