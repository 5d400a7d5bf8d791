"""Records workflow histories from the scenario files into tests/histories/ for the replay tests.

Run `python -m tests.record_histories` to add histories of new scenarios or workflows. Existing files are kept:
they are what earlier code recorded, and today's code must still replay them (guard changes with
workflow.patched()). `--force` rewrites them, only for a change that no running workflow can meet.

After a patched change, `--tag NAME --kind KIND` records that kind's histories again beside the old ones, as
`<scenario>@NAME--<kind>--<key>.json`, so both the old and the new code path keep replaying.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from contracts.flows import ID_PREFIXES
from starter.scenario import load_scenario
from tests.scenario_harness import run_scenario
from billing.logging import configure_logging
from worker import install_runtime

HERE = Path(__file__).parent
WORKFLOW_KINDS = sorted(ID_PREFIXES.values(), key=len, reverse=True)  # longest first: "month-end" before "month"
RECORDED = ["card_paid.yaml", "card_declined_retry.yaml", "paypal_paid.yaml", "subscriptions/credit_lines.yaml",
            "subscriptions/prepaid_eur.yaml", "activation/applied_day_12.yaml", "activation/never_applied.yaml",
            "rbi/processing_paid.yaml", "rbi/authorize_revoke_reverse.yaml", "recovery/sca_authenticate.yaml",
            "recovery/overdue.yaml", "support/flex_consulting.yaml", "support/support_plans.yaml",
            "payments/wire_payment_invoiced.yaml", "payments/forgive_and_refund.yaml",
            "payments/india_above_mandate_pay_now.yaml"]


async def main(force: bool, tag: str | None = None, kinds: list[str] | None = None) -> None:
    install_runtime()
    configure_logging("WARNING")
    target = HERE / "histories"
    target.mkdir(exist_ok=True)
    for name in RECORDED:
        histories = {}
        await run_scenario(load_scenario(str(HERE / "scenarios" / name)), None, history_sink=histories)
        for workflow_id, history in histories.items():
            kind = next(k for k in WORKFLOW_KINDS if workflow_id.startswith(f"{k}-"))
            if kinds and kind not in kinds:
                continue
            key = workflow_id.removeprefix(f"{kind}-")
            stem = Path(name).stem + (f"@{tag}" if tag else "")
            path = target / f"{stem}--{kind}--{key}.json"
            if path.exists() and not force:
                continue
            path.write_text(history.to_json())
            print(f"recorded {path.relative_to(HERE.parent)} ({len(history.events)} events)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.record_histories")
    parser.add_argument("--force", action="store_true", help="rewrite existing files")
    parser.add_argument("--tag", help="record beside the existing files, as <scenario>@TAG--...")
    parser.add_argument("--kind", action="append", choices=WORKFLOW_KINDS, help="only these workflow kinds")
    args = parser.parse_args()
    asyncio.run(main(force=args.force, tag=args.tag, kinds=args.kind))
