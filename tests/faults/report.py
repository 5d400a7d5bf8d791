"""`python -m tests.faults.report`: the fault suite's figures as a table, from its last run
(tests/artifacts/faults.json, written by `make test-faults`); `--run` runs the suite first."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.faults import harness

ROWS = [
    ("organizations", "organizations"), ("worker kills (SIGKILL)", "kills"), ("worker starts", "worker_starts"),
    ("workers ended by themselves (server down)", "worker_exits"),
    ("dev server restarts", "dev_server_restarts"), ("database cuts", "database_cuts"),
    ("month-end triggers (each sent twice)", "month_end_triggers"), ("webhooks POSTed (each twice)", "webhooks_sent"),
    ("gateway faults: 500", ("faults", "error_500")), ("gateway faults: timeout before charging",
                                                       ("faults", "timeout_before")),
    ("gateway faults: timeout after charging", ("faults", "timeout_after")), ("invoices", "invoices"),
    ("missing invoices", "missing_invoices"), ("duplicate invoices", "duplicate_invoices"),
    ("payable invoices", "payable_invoices"), ("PAID", "paid"), ("FAILED with e-mail", "failed_with_email"),
    ("not at rest", "not_at_rest"), ("successful charges in the gateway's ledger", "charges"),
    ("double charges", "double_charges"), ("PAID without exactly one charge", "paid_without_one_charge"),
    ("charges without a PAID invoice", "charges_without_paid_invoice"),
    ("gateway ledger = our PAID payments, by currency", "ledger_matches_payments"),
    ("money invariant (tests/accounting.py)", "invariant"), ("seconds seeding", "seconds_seeding"),
    ("seconds from trigger to rest", "seconds_flow"),
]


def table(results: dict[str, Any]) -> str:
    def value(key: str | tuple[str, str]) -> str:
        found: Any = results
        for part in (key if isinstance(key, tuple) else (key,)):
            found = found.get(part, "-") if isinstance(found, dict) else "-"
        return str(found)
    width = max(len(label) for label, _ in ROWS)
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{label:<{width}}  {value(key)}" for label, key in ROWS]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = harness.RESULTS
    if "--run" in argv or not path.exists():
        results = asyncio.run(harness.run())
        harness.write(results)
    results = json.loads(Path(path).read_text())
    print(table(results))
    if results.get("timeline"):
        print("\ntimeline:\n  " + "\n  ".join(results["timeline"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
