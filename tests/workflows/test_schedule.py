"""The month-end Schedule on the dev server: 00:00 UTC on the 1st, idempotent to set up, and it settles."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlmodel import select

from store.gateway import SandboxGateway
from billing.invoicing import period_before
from store.tables import Invoice
from starter.schedules import ensure_month_end_schedule
from tests.factories import VISA, card, org_with_method
from worker import build_worker
from workflows.month_end import MonthEndWorkflow
from workflows.settlement import SettlementWorkflow
from contracts.flows import settlement_workflow_id


async def test_month_end_schedule_fires_on_the_first_and_settles_every_organization(dev_env, db, smtp, task_queue):
    client = dev_env.client
    gateway = SandboxGateway(db)
    org = f"acme-{task_queue[-8:]}"  # workflow IDs are business keys on the session-wide dev server
    org_with_method(db, gateway, card(VISA), org_id=org, created=datetime(2020, 1, 1, tzinfo=timezone.utc))
    handle = await ensure_month_end_schedule(client, task_queue)
    try:
        again = await ensure_month_end_schedule(client, task_queue)  # every `make run` does this
        assert again.id == handle.id
        description = await handle.describe()
        [calendar] = description.schedule.spec.calendars
        assert ([r.start for r in calendar.day_of_month], [r.start for r in calendar.hour],
                [r.start for r in calendar.minute]) == ([1], [0], [0])
        assert description.schedule.spec.time_zone_name == "UTC"
        next_fire = description.info.next_action_times[0]
        assert (next_fire.day, next_fire.hour, next_fire.minute) == (1, 0, 0)

        async with build_worker(client, db, gateway, smtp, task_queue=task_queue):
            await handle.trigger()  # what the 1st of the month does
            for _ in range(200):
                description = await handle.describe()
                if description.info.recent_actions:
                    break
            action = description.info.recent_actions[0].action
            result = await client.get_workflow_handle_for(MonthEndWorkflow.run, action.workflow_id).result()
            expected = period_before(description.info.recent_actions[0].scheduled_at)
            settled = await client.get_workflow_handle_for(
                SettlementWorkflow.run, settlement_workflow_id(org, expected)).result()
        assert settled.invoice.period == expected
        assert (result.period, result.started) == (expected, 1)
        with db.session() as s:
            assert [(i.org_id, i.period) for i in s.exec(select(Invoice).where(Invoice.kind == "cloud",
                                                                             Invoice.status != "PENDING"))] == [
                (org, expected)]
    finally:
        await handle.delete()
