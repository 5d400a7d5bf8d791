"""SCA recovery and overdue suspension (SPEC F1-F3, D9) on the time-skipping server."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from billing.cards import payment_method_adapter
from store.gateway import SandboxGateway
from store.tables import EmailMessage, Organization, Payment
from services.client import BillingClient, BillingError
from starter.idle import wait_until_at_rest
from starter.scenario import load_scenario
from tests.scenario_harness import run_scenario
from tests.factories import SCA, card, closed_invoice, org_with_method
from worker import build_worker
from workflows.organization import OrgBillingWorkflow
from workflows.payment import PaymentWorkflow
from contracts.flows import ORG_STATUS, org_billing_workflow_id

SCENARIOS = Path(__file__).parents[1] / "scenarios" / "recovery"
FEB_1 = datetime(2027, 2, 1, tzinfo=timezone.utc)


class SlowGateway(SandboxGateway):
    """Charges take a moment, so a customer's retry can be in flight when re-authentication lands."""

    def charge(self, **kwargs):
        result = super().charge(**kwargs)
        if not kwargs.get("verification"):
            import time
            time.sleep(0.3)
        return result


async def _failed_payments(env, db, gateway, task_queue, count: int) -> tuple[BillingClient, list]:
    await env.sleep(FEB_1 - await env.get_current_time())
    org_with_method(db, gateway, card(SCA))
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    handles = []
    for month in range(1, count + 1):
        invoice = closed_invoice(db, total=f"{10 * month}.00", period=f"2026-{month:02d}" if month <= 12 else "2027-01")
        handles.append(await billing.charge_invoice(invoice.number))
    await wait_until_at_rest(env.client, [handle.id for handle in handles])
    for handle in handles:
        state = await handle.query(PaymentWorkflow.state)
        assert state.status == "FAILED_AUTHENTICATION"
    return billing, handles


async def test_authenticating_collects_all_ten_failed_payments(time_skipping_env, db, smtp, task_queue):
    env, gateway = time_skipping_env, SandboxGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            billing, handles = await _failed_payments(env, db, gateway, task_queue, 10)
            result = await billing.update_payment_method("acme", card(SCA), authenticate=True)
            states = [await handle.result() for handle in handles]
    assert result.authenticated and len(result.retried) == 10 and result.collected == 10 and not result.still_failed
    assert all(state.status == "PAID" and state.attempts == 2 for state in states)
    paid = [c for c in gateway.charges() if c.idempotency_key.startswith("INV-")]
    assert len(paid) == 10  # exactly one successful charge per invoice


async def test_reauthentication_while_a_retry_is_running_charges_once(time_skipping_env, db, smtp, task_queue):
    env, gateway = time_skipping_env, SlowGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            billing, [handle] = await _failed_payments(env, db, gateway, task_queue, 1)
            await billing.retry_payment("acme")  # the customer's retry from the e-mail, in flight ...
            result = await billing.update_payment_method("acme", card(SCA), authenticate=True)  # ... and SCA
            state = await handle.result()
    assert state.status == "PAID"
    assert result.collected == 1
    succeeded = [c for c in gateway.charges() if c.idempotency_key.startswith("INV-")]
    assert len(succeeded) == 1  # never charged twice


async def test_without_authentication_nothing_is_charged(time_skipping_env, db, smtp, task_queue):
    env, gateway = time_skipping_env, SandboxGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            billing, [handle] = await _failed_payments(env, db, gateway, task_queue, 1)
            result = await billing.update_payment_method("acme", card(SCA), authenticate=False)
            await wait_until_at_rest(env.client, [handle.id])
            state = await handle.query(PaymentWorkflow.state)
    assert (result.authenticated, result.retried) == (False, [])
    assert state.attempts == 1 and state.status == "FAILED_AUTHENTICATION"


async def test_an_unusable_method_is_refused_by_the_validator_and_changes_nothing(time_skipping_env, db, smtp,
                                                                                 task_queue):
    env, gateway = time_skipping_env, SandboxGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            billing, _ = await _failed_payments(env, db, gateway, task_queue, 1)
            # Valid when typed (the edge checks against its own day) but expired by the time it arrives.
            expired = payment_method_adapter.validate_python(
                {"type": "card", "number": SCA, "exp": "01/27", "cvc": "123", "name": "Hans Meier"},
                context={"today": date(2027, 1, 15)})
            with pytest.raises(BillingError, match="expired"):
                await billing.update_payment_method("acme", expired, authenticate=True)
            paypal = payment_method_adapter.validate_python({"type": "paypal", "email": "ap@acme.test"})
            with pytest.raises(BillingError, match="PayPal"):
                await billing.update_payment_method("acme", paypal, authenticate=True)
    with db.session() as s:
        assert [p.status for p in s.exec(select(Payment))] == ["FAILED_AUTHENTICATION"]


async def test_overdue_suspends_then_locks_and_paying_everything_reactivates(time_skipping_env, db, smtp, task_queue):
    env, gateway = time_skipping_env, SandboxGateway(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            billing, [handle] = await _failed_payments(env, db, gateway, task_queue, 1)
            org_handle = env.client.get_workflow_handle_for(OrgBillingWorkflow.run, org_billing_workflow_id("acme"))

            async def status_after(days: int) -> str:
                # A minute into the day: day 31 is the first "more than 30 days" (D9), and a timer fires a moment late.
                await env.sleep(FEB_1 + timedelta(days=days, minutes=1) - await env.get_current_time())
                await wait_until_at_rest(env.client, [org_handle.id])
                with db.session() as s:
                    return s.get(Organization, "acme").status

            assert await status_after(29) == "ACTIVE"
            assert await status_after(31) == "SUSPENDED"
            assert (await org_handle.describe()).typed_search_attributes.get(ORG_STATUS) == "SUSPENDED"
            assert await status_after(59) == "SUSPENDED"
            assert await status_after(61) == "LOCKED"
            await billing.update_payment_method("acme", card(SCA), authenticate=True)
            assert (await handle.result()).status == "PAID"
            assert await status_after(62) == "ACTIVE"
    with db.session() as s:
        kinds = [m.kind for m in s.exec(select(EmailMessage).order_by(EmailMessage.id))]
    assert kinds.count("org_suspended") == 1 and kinds.count("org_locked") == 1


@pytest.mark.parametrize("name, statuses, organization", [
    ("sca_authenticate.yaml", ["FAILED_AUTHENTICATION", "FAILED_AUTHENTICATION", "PAID", "PAID"], "ACTIVE"),
    ("sca_not_authenticated.yaml", ["FAILED_AUTHENTICATION", "FAILED_AUTHENTICATION"], "SUSPENDED"),
    ("overdue.yaml", ["FAILED"], "LOCKED"),
])
async def test_simulated_recovery_scenarios(name, statuses, organization, new_database):
    output = await run_scenario(load_scenario(str(SCENARIOS / name)), new_database())
    assert [p["status"] for p in output["payments"]] == statuses
    assert output["organizations"][0]["status"] == organization
    kinds = [e["kind"] for e in output["emails"]]
    assert kinds.count("payment_failed") == statuses.count("FAILED_AUTHENTICATION") + statuses.count("FAILED")
    if organization == "LOCKED":
        assert kinds.count("org_suspended") == 1 and kinds.count("org_locked") == 1
