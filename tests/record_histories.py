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

from tests.codec_keys import use_test_keys

use_test_keys()  # recorded histories are encrypted under the suite's keys, which the replay test holds

from contracts.flows import ID_PREFIXES  # noqa: E402
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


async def record_deliveries(force: bool, tag: str | None = None) -> None:
    """DeliveryWorkflow (SPEC I6) has no scenario event: one delivery answered 500 then 204 (a retry after a timer),
    one that gives up after 3 days, recorded on the time-skipping server against a local receiver."""
    import tempfile
    from datetime import timedelta

    from sqlmodel import SQLModel
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    import store.tables  # noqa: F401
    from activities.email import SmtpSettings
    from contracts.delivery import start_delivery_workflow
    from contracts.flows import delivery_workflow_id
    from starter.processes import binary
    from starter.temporal_setup import register_search_attributes
    from store.db import Database
    from store.gateway import SandboxGateway
    from tests.factories import org_with_method
    from tests.receiver import Receiver
    from tests.workflows.test_delivery import endpoint, one_event
    from worker import build_worker

    target = HERE / "histories"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"),
                                                        data_converter=pydantic_data_converter)
    await register_search_attributes(env.client)
    try:
        for name, answers, within in (("delivery_retry", [500, 204], timedelta(hours=1)),
                                      ("delivery_gives_up", [500], timedelta(days=3, hours=1))):
            with tempfile.TemporaryDirectory() as tmp:
                db = Database(f"sqlite:///{tmp}/store.db")
                SQLModel.metadata.create_all(db.engine)
                org_with_method(db, SandboxGateway(db), None)
                with Receiver(answers) as receiver:
                    endpoint(db, receiver.url)
                    request = one_event(db, await env.get_current_time())
                    async with build_worker(env.client, db, SandboxGateway(db), SmtpSettings(host="127.0.0.1", port=1),
                                            task_queue=name):
                        await start_delivery_workflow(env.client, name, request)
                        workflow_id = delivery_workflow_id(request.event_id, request.endpoint_id)
                        with env.auto_time_skipping_disabled():
                            await env.sleep(within)
                            handle = env.client.get_workflow_handle(workflow_id)
                            await handle.result()
                            history = await handle.fetch_history()
                stem = name + (f"@{tag}" if tag else "")
                path = target / f"{stem}--delivery--{request.endpoint_id}.json"
                db.dispose()
                if path.exists() and not force:
                    continue
                path.write_text(history.to_json())
                print(f"recorded {path.relative_to(HERE.parent)} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.record_histories")
    parser.add_argument("--force", action="store_true", help="rewrite existing files")
    parser.add_argument("--tag", help="record beside the existing files, as <scenario>@TAG--...")
    parser.add_argument("--kind", action="append", choices=WORKFLOW_KINDS, help="only these workflow kinds")
    args = parser.parse_args()
    if not args.kind or args.kind != ["delivery"]:
        asyncio.run(main(force=args.force, tag=args.tag, kinds=args.kind))
    if not args.kind or "delivery" in args.kind:
        asyncio.run(record_deliveries(force=args.force, tag=args.tag))
