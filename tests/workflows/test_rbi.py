"""India (RBI) payments (SPEC E1-E6) on the time-skipping server: PROCESSING, authorization, revocation, reversal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from billing.webhooks import InvalidSignature
from store.gateway import SandboxGateway, WebhookEvent, sign_webhook
from store.tables import Mandate, Payment
from contracts.outcomes import NothingToDo
from services.client import BillingClient
from starter.idle import wait_until_at_rest
from starter.scenario import load_scenario
from tests.scenario_harness import run_scenario
from tests.factories import closed_invoice, org_with_method
from billing.cards import payment_method_adapter
from worker import build_worker
from workflows.payment import PaymentWorkflow

INDIA = "4000003560000123"
FEB_1 = datetime(2027, 2, 1, tzinfo=timezone.utc)
WINDOW = timedelta(days=5)
SCENARIOS = Path(__file__).parents[1] / "scenarios" / "rbi"


def india_card():
    return payment_method_adapter.validate_python(
        {"type": "card", "number": INDIA, "exp": "12/30", "cvc": "123", "name": "Arjun Rao"},
        context={"today": FEB_1.date()})


class India:
    def __init__(self, env, db, smtp, task_queue) -> None:
        self.env, self.db = env, db
        self.gateway = SandboxGateway(db, rbi_processing=timedelta(days=3))
        self.billing = BillingClient(env.client, db, self.gateway, clock=env.get_current_time, task_queue=task_queue)
        self.smtp, self.task_queue = smtp, task_queue

    async def setup(self, usd: str) -> None:
        await self.env.sleep(FEB_1 - await self.env.get_current_time())
        org_with_method(self.db, self.gateway, None)
        await self.billing.record_fx_rate("INR", Decimal("83.20"), FEB_1 - timedelta(days=30))
        await self.billing.update_payment_method("acme", india_card())  # registers the mandate (E1)
        self.invoice = closed_invoice(self.db, total=usd)
        self.handle = await self.billing.charge_invoice(self.invoice.number)
        await self.idle()

    async def idle(self):
        await wait_until_at_rest(self.env.client, [self.handle.id])
        return await self.handle.query(PaymentWorkflow.state)

    async def advance(self, delta: timedelta) -> None:
        await self.env.sleep(delta)
        for webhook in self.gateway.due_webhooks(await self.env.get_current_time()):
            await self.billing.handle_gateway_webhook(webhook.body, webhook.headers)
            self.gateway.webhook_delivered(webhook.charge_id)
        await self.idle()

    def payments(self) -> list[Payment]:
        with self.db.session() as s:
            return list(s.exec(select(Payment).order_by(Payment.id)))


@pytest.fixture
async def india(time_skipping_env, db, smtp, task_queue):
    world = India(time_skipping_env, db, smtp, task_queue)
    async with build_worker(time_skipping_env.client, db, world.gateway, smtp, task_queue=task_queue):
        with time_skipping_env.auto_time_skipping_disabled():
            yield world


async def test_small_charge_is_processing_then_paid_in_inr_at_the_rate_of_that_moment(india):
    await india.setup("100.00")
    [payment] = india.payments()
    assert (payment.status, payment.amount, payment.currency, payment.fx_rate) == (
        "PROCESSING", Decimal("8320"), "INR", Decimal("83.2"))
    await india.billing.record_fx_rate("INR", Decimal("90.00"), FEB_1 + timedelta(days=1))  # never recomputed
    await india.advance(timedelta(days=2))
    assert india.payments()[0].status == "PROCESSING"  # the issuer's notice period is 3 days
    await india.advance(timedelta(days=1, minutes=1))
    [payment] = india.payments()
    assert (payment.status, payment.amount, payment.fx_rate) == ("PAID", Decimal("8320"), Decimal("83.2"))
    with india.db.session() as s:
        [mandate] = s.exec(select(Mandate)).all()
    assert (mandate.status, mandate.limit, mandate.currency) == ("ACTIVE", Decimal("1400"), "USD")


@pytest.mark.parametrize("authorize_after, paid", [(WINDOW - timedelta(minutes=1), True),
                                                   (WINDOW + timedelta(minutes=1), False)])
async def test_large_charge_needs_authorization_within_the_window(india, authorize_after, paid):
    await india.setup("300.00")  # 24,960 INR > 15,000
    state = await india.idle()
    assert state.waiting_for == "authorization"
    await india.advance(authorize_after)
    if paid:
        await india.billing.authorize_payment("acme")
        await india.idle()
    else:
        with pytest.raises(NothingToDo, match="nothing to authorize: INV-.* is FAILED"):
            await india.billing.authorize_payment("acme")  # the window closed: the payment already FAILED
    await india.advance(timedelta(days=1))
    [payment] = india.payments()
    assert payment.status == ("PAID" if paid else "FAILED")
    if not paid:
        assert payment.failure_code == "authorization_missing"


async def test_duplicate_gateway_webhooks_change_nothing(india):
    await india.setup("100.00")
    await india.env.sleep(timedelta(days=3, minutes=1))
    webhooks = india.gateway.due_webhooks(await india.env.get_current_time())
    assert len(webhooks) == 1
    received = [await india.billing.handle_gateway_webhook(webhooks[0].body, webhooks[0].headers)
                for _ in range(3)]  # gateways deliver at least once
    assert [r.duplicate for r in received] == [False, True, True]
    assert received[1].outcome == received[0].outcome == f"signalled {india.handle.id}: charge.succeeded"
    state = await india.handle.result()
    assert state.status == "PAID" and [p.status for p in india.payments()] == ["PAID"]


async def test_a_forged_webhook_is_refused(india):
    await india.setup("100.00")
    [payment] = india.payments()
    event = WebhookEvent(id="evt_x", type="charge.succeeded", charge_id=payment.gateway_charge_id,
                         idempotency_key=payment.idempotency_key, at=await india.env.get_current_time())
    webhook = sign_webhook(event, await india.env.get_current_time())
    forged = webhook.body.replace(b"charge.succeeded", b"charge.failed")
    with pytest.raises(InvalidSignature, match="signature"):
        await india.billing.handle_gateway_webhook(forged, webhook.headers)
    assert (await india.idle()).status == "PROCESSING"


async def test_revoked_mandate_fails_the_charge_and_a_retry_registers_a_new_one_and_pays(india):
    await india.env.sleep(FEB_1 - timedelta(days=1) - await india.env.get_current_time())
    org_with_method(india.db, india.gateway, None)
    await india.billing.record_fx_rate("INR", Decimal("83.20"), FEB_1 - timedelta(days=30))
    await india.billing.update_payment_method("acme", india_card())
    await india.billing.revoke_mandate("acme")
    await india.env.sleep(timedelta(days=1))
    india.invoice = closed_invoice(india.db, total="100.00")
    india.handle = await india.billing.charge_invoice(india.invoice.number)
    state = await india.idle()
    assert (state.status, state.failure_code) == ("FAILED", "mandate_revoked")
    await india.billing.retry_payment("acme")
    await india.idle()
    await india.advance(timedelta(days=3, minutes=1))
    assert [p.status for p in india.payments()] == ["FAILED", "PAID"]
    with india.db.session() as s:
        assert sorted(m.status for m in s.exec(select(Mandate))) == ["ACTIVE", "REVOKED"]


@pytest.mark.parametrize("revoke, final", [(False, "REFUNDED"), (True, "CANCELLED")])
async def test_reversal_refunds_a_success_and_cancels_a_failure(india, revoke, final):
    await india.setup("100.00")
    await india.billing.reverse_payment("acme")
    state = await india.idle()
    assert state.status == "PENDING_REVERSAL" and india.payments()[0].status == "PENDING_REVERSAL"
    with pytest.raises(NothingToDo, match="already PENDING_REVERSAL"):
        await india.billing.reverse_payment("acme")  # a second request changes nothing
    if revoke:
        await india.billing.revoke_mandate("acme")
    await india.advance(timedelta(days=3, minutes=1))
    state = await india.handle.result()
    assert state.status == final and [p.status for p in india.payments()] == [final]
    refunds = india.gateway.charges(kind="refund")
    assert len([r for r in refunds if r.idempotency_key.startswith("reversal:")]) == (1 if final == "REFUNDED" else 0)


@pytest.mark.parametrize("name", ["processing_paid.yaml", "authorize_revoke_reverse.yaml"])
async def test_simulated_rbi_scenarios_balance(name, new_database):
    output = await run_scenario(load_scenario(str(SCENARIOS / name)), new_database())
    assert all(m["limit"] == "1400.00" and m["currency"] == "USD" for m in output["mandates"])
