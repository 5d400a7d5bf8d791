"""SPEC D9 at its boundaries: "more than 30 days" is day 31 and "more than 60" day 61, counted from the invoice's
date (its issue), not from the first failed charge; on the time-skipping server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from store.gateway import SandboxGateway
from store.tables import Organization
from services.client import BillingClient
from starter.idle import wait_until_at_rest
from tests.factories import AT, DECLINED, card, closed_invoice, org_with_method
from worker import build_worker
from workflows.organization import overdue_from
from workflows.payment import PaymentWorkflow
from contracts.flows import org_billing_workflow_id

INVOICE_DATE = AT  # closed_invoice() issues its invoice on 1 February 2027, 00:00 UTC
JUST_BEFORE = timedelta(hours=23, minutes=59)
JUST_AFTER = timedelta(minutes=1)  # a timer fires a moment after its deadline

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the rule, not the database


async def _status_after(env, db, days: int, plus: timedelta = timedelta(0)) -> str:
    await env.sleep(INVOICE_DATE + timedelta(days=days) + plus - await env.get_current_time())
    await wait_until_at_rest(env.client, [org_billing_workflow_id("acme")])
    with db.session() as s:
        return s.get(Organization, "acme").status


async def _declined_invoice(env, db, gateway, task_queue, first_charge: datetime) -> None:
    """An invoice dated 1 February whose first charge (declined) happens at `first_charge`."""
    await env.sleep(first_charge - await env.get_current_time())
    org_with_method(db, gateway, card(DECLINED))
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    invoice = closed_invoice(db, total="10.00", period="2027-01")
    handle = await billing.charge_invoice(invoice.number)
    await wait_until_at_rest(env.client, [handle.id])
    assert (await handle.query(PaymentWorkflow.state)).status == "FAILED"


@SQLITE
async def test_suspended_on_day_31_not_day_30_and_locked_on_day_61_not_day_60(time_skipping_env, db, smtp,
                                                                              task_queue):
    env, gateway = time_skipping_env, SandboxGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            await _declined_invoice(env, db, gateway, task_queue, INVOICE_DATE)
            assert await _status_after(env, db, 30, JUST_BEFORE) == "ACTIVE"  # day 30: 30 days, not more
            assert await _status_after(env, db, 31, JUST_AFTER) == "SUSPENDED"
            assert await _status_after(env, db, 60, JUST_BEFORE) == "SUSPENDED"
            assert await _status_after(env, db, 61, JUST_AFTER) == "LOCKED"


@SQLITE
async def test_overdue_counts_from_the_invoice_date_not_the_first_failed_charge(time_skipping_env, db, smtp,
                                                                                task_queue):
    env, gateway = time_skipping_env, SandboxGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            # First charged (and declined) 20 days after the invoice was issued.
            await _declined_invoice(env, db, gateway, task_queue, INVOICE_DATE + timedelta(days=20))
            assert await _status_after(env, db, 30, JUST_BEFORE) == "ACTIVE"
            assert await _status_after(env, db, 31, JUST_AFTER) == "SUSPENDED"  # day 11 after the failure, day 31 of the invoice
            assert await _status_after(env, db, 61, JUST_AFTER) == "LOCKED"


def test_more_than_n_days_starts_on_day_n_plus_1_of_the_invoice_date():
    issued = datetime(2025, 2, 1, 0, 5, tzinfo=timezone.utc)  # a month-end invoice, a few minutes after midnight
    assert overdue_from(issued, timedelta(days=30)) == datetime(2025, 3, 4, tzinfo=timezone.utc)
    assert overdue_from(issued, timedelta(days=60)) == datetime(2025, 4, 3, tzinfo=timezone.utc)
    # A demo's shortened duration (H4) is counted exactly.
    assert overdue_from(issued, timedelta(minutes=10)) == issued + timedelta(minutes=10)
