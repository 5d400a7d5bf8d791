"""`billing simulate`: the JSON document alone on stdout, nothing from the SDK on stderr at the default log level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BILLING = Path(sys.executable).parent / "billing"


def test_simulate_writes_only_the_document_to_stdout_and_nothing_to_stderr() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    completed = subprocess.run([str(BILLING), "simulate", str(ROOT / "tests" / "scenarios" / "card_paid.yaml"),
                                "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)  # one document, nothing before or after it
    assert document["invoices"]
    assert completed.stderr == ""
