"""Python children of a shifted test run (BILLING_TEST_SHIFT_DAYS) travel with it: see tests/time_shift.py."""

import os

if os.environ.get("BILLING_TEST_SHIFT_DAYS", "").strip():
    import sys
    from pathlib import Path

    sys.path.append(str(Path(__file__).resolve().parents[2]))  # the repository, where tests.time_shift lives
    from tests.time_shift import install

    install()
