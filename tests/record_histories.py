"""Records workflow histories from the scenario files into tests/histories/ for the replay tests.

Run `python -m tests.record_histories` after a deliberate workflow change (guarded by workflow.patched()),
never to make a failing replay pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starter.scenario import load_scenario
from starter.simulate import simulate
from billing.logging import configure_logging
from worker import install_runtime

HERE = Path(__file__).parent
WORKFLOW_KINDS = ["month-end", "settlement", "payment", "activation"]  # workflow ID prefixes (workflows/shared.py)
RECORDED = ["card_paid.yaml", "card_declined_retry.yaml", "paypal_paid.yaml", "subscriptions/credit_lines.yaml",
            "subscriptions/prepaid_eur.yaml", "activation/applied_day_12.yaml", "activation/never_applied.yaml"]


async def main() -> None:
    install_runtime()
    configure_logging("WARNING")
    target = HERE / "histories"
    target.mkdir(exist_ok=True)
    for name in RECORDED:
        histories = {}
        await simulate(load_scenario(str(HERE / "scenarios" / name)), history_sink=histories)
        for workflow_id, history in histories.items():
            kind = next(k for k in WORKFLOW_KINDS if workflow_id.startswith(f"{k}-"))
            key = workflow_id.removeprefix(f"{kind}-")
            path = target / f"{Path(name).stem}--{kind}--{key}.json"
            path.write_text(history.to_json())
            print(f"recorded {path.relative_to(HERE.parent)} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
