"""Buying Flex Consulting (SPEC B3) and support plans (B1) through the simulator and the checkout workflow."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from sqlmodel import select

from billing.cards import payment_method_adapter
from store.gateway import SandboxGateway
from billing.profiles import BillingProfileIn
from store.tables import BillingContactChange, BillingProfile, EmailMessage, Invoice, Payment, PaymentMethod
from services.client import BillingClient, BillingError
from starter.idle import wait_until_at_rest
from starter.scenario import load_scenario
from tests.scenario_harness import run_scenario
from tests.factories import AMEX, DECLINED, VISA, card, org_with_method
from worker import build_worker
from workflows.checkout import CheckoutWorkflow
from contracts.flows import payment_workflow_id

SCENARIOS = Path(__file__).parents[1] / "scenarios" / "support"


async def test_flex_consulting_from_gb_is_untaxed_and_from_ie_carries_vat(new_database):
    output = await run_scenario(load_scenario(str(SCENARIOS / "flex_consulting.yaml")), new_database())
    consulting = {i["org"]: i for i in output["invoices"] if i["kind"] == "consulting"}
    assert (consulting["london"]["tax"], consulting["london"]["total"], consulting["london"]["status"]) == (
        "0.00", "5000.00", "PAID")
    assert (consulting["dublin"]["tax"], consulting["dublin"]["total"]) == ("1150.00", "6150.00")
    confirmations = [(e["org"], e["to"]) for e in output["emails"] if e["kind"] == "consulting_confirmation"]
    assert confirmations == [("london", ["owner@london.test"]), ("dublin", ["ap@dublin.test"])]  # A3 after D7


async def test_support_plan_changes_take_effect_next_month_and_trial_cancellation_stops_billing(new_database):
    output = await run_scenario(load_scenario(str(SCENARIOS / "support_plans.yaml")), new_database())
    plans = [(p["org"], p["plan"], p["effective"], p["billing_stopped"]) for p in output["support_plans"]]
    assert ("upgrade", "premium", "2027-02-01", None) in plans
    assert ("trial", "developer", "2027-01-01", "2027-01-10") in plans
    support = {(i["org"], i["period"]): [l["amount"] for l in i["lines"] if l["service"] == "Support"]
               for i in output["invoices"]}
    assert support[("upgrade", "2027-01")] == ["200.00"] and support[("upgrade", "2027-02")] == ["799.00"]
    assert support[("trial", "2027-01")] == []


class Shop:
    def __init__(self, env, db, task_queue, abandon=timedelta(hours=24)) -> None:
        from billing.config import BillingDurations

        self.env, self.db = env, db
        self.gateway = SandboxGateway(db)
        self.billing = BillingClient(env.client, db, self.gateway, clock=env.get_current_time, task_queue=task_queue,
                                     durations=BillingDurations(checkout_abandon=abandon))


@pytest.fixture
async def shop(time_skipping_env, db, smtp, task_queue):
    world = Shop(time_skipping_env, db, task_queue)
    async with build_worker(time_skipping_env.client, db, world.gateway, smtp, task_queue=task_queue):
        with time_skipping_env.auto_time_skipping_disabled():
            yield world


def _nothing_charged(db) -> None:
    with db.session() as s:
        assert s.exec(select(Invoice).where(Invoice.kind == "consulting")).all() == []
        assert s.exec(select(Payment)).all() == []


def test_an_invalid_billing_address_is_refused_at_the_edge():
    with pytest.raises(ValidationError) as err:
        BillingProfileIn(country="US", state="ZZ", city="Austin", address_line1="1 Main", postal_code="78701")
    assert err.value.errors()[0]["loc"] == ("state",)


async def test_an_invalid_card_at_checkout_is_refused_and_nothing_is_charged(shop):
    org_with_method(shop.db, shop.gateway, card(VISA))
    with pytest.raises(ValidationError) as err:
        payment_method_adapter.validate_python({"type": "card", "number": "4242424242424241", "exp": "12/30",
                                                "cvc": "123", "name": "Ada"})
    assert err.value.errors()[0]["loc"][-1] == "number"
    _nothing_charged(shop.db)


async def test_an_abandoned_cart_ends_with_nothing_charged(time_skipping_env, db, smtp, task_queue):
    world = Shop(time_skipping_env, db, task_queue, abandon=timedelta(hours=2))
    org_with_method(db, world.gateway, card(VISA))
    async with build_worker(time_skipping_env.client, db, world.gateway, smtp, task_queue=task_queue):
        handle = await world.billing.buy_flex_consulting("acme", "standard", Decimal("5000.00"), confirm=False)
        state = await handle.result()  # the time-skipping server jumps the two hours
    assert state.step == "ABANDONED" and state.cart.total == Decimal("5000.00")
    _nothing_charged(db)
    with pytest.raises(Exception):
        await handle.execute_update(CheckoutWorkflow.confirm)


async def test_a_declined_card_fails_the_purchase_until_a_retry_pays(shop):
    org_with_method(shop.db, shop.gateway, card(DECLINED))
    handle = await shop.billing.buy_flex_consulting("acme", "standard", Decimal("5000.00"))
    client = shop.env.client
    await wait_until_at_rest(client, [handle.id])  # the invoice is issued and its payment started
    invoice = (await handle.query(CheckoutWorkflow.state)).invoice
    await wait_until_at_rest(client, [handle.id, payment_workflow_id(invoice)])  # the outcome has reached the cart
    state = await handle.query(CheckoutWorkflow.state)
    assert state.payment_status == "FAILED"
    with shop.db.session() as s:
        kinds = [m.kind for m in s.exec(select(EmailMessage))]
    assert "payment_failed" in kinds and "consulting_confirmation" not in kinds
    await shop.billing.update_payment_method("acme", card(VISA))
    await shop.billing.retry_payment("acme")
    state = await handle.result()
    assert state.step == "PAID"
    with shop.db.session() as s:
        assert "consulting_confirmation" in [m.kind for m in s.exec(select(EmailMessage))]


async def test_a_checkout_step_out_of_order_is_refused(shop):
    org_with_method(shop.db, shop.gateway, card(VISA))
    handle = await shop.billing.buy_flex_consulting("acme", "standard", Decimal("5000.00"), confirm=False)
    await handle.execute_update(CheckoutWorkflow.choose_level, args=["premium", Decimal("9000.00")])
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(CheckoutWorkflow.confirm)  # the new level needs a new review
    assert "review the cart" in err.value.cause.message


async def test_billing_contact_changes_are_audited(shop):
    org_with_method(shop.db, shop.gateway, card(VISA))
    await shop.billing.set_billing_contact("acme", "ap@acme.test", True, changed_by="owner@acme.test")
    await shop.billing.set_billing_contact("acme", None, False, changed_by="owner@acme.test")
    with pytest.raises(ValueError):
        await shop.billing.set_billing_contact("acme", "not-an-email", False, changed_by="x")
    with shop.db.session() as s:
        changes = [(c.changed_by, c.old_billing_email, c.new_billing_email, c.new_only_invoice_emails)
                   for c in s.exec(select(BillingContactChange).order_by(BillingContactChange.id))]
        profile = s.get(BillingProfile, "acme")
    assert changes == [("owner@acme.test", None, "ap@acme.test", True), ("owner@acme.test", "ap@acme.test", None, False)]
    assert (profile.billing_email, profile.only_invoice_emails) == (None, False)


async def test_a_card_given_at_checkout_is_the_one_charged(shop):
    """B3: the method chosen at checkout pays the purchase, not the method on file, which stays on file."""
    org_with_method(shop.db, shop.gateway, card(DECLINED))
    handle = await shop.billing.buy_flex_consulting("acme", "standard", Decimal("5000.00"), method=card(VISA))
    state = await handle.result()
    assert state.step == "PAID"
    with shop.db.session() as s:
        [payment] = s.exec(select(Payment)).all()
        charged = s.get(PaymentMethod, payment.payment_method_id)
        on_file = s.exec(select(PaymentMethod).where(PaymentMethod.active == True)).all()  # noqa: E712
    assert (charged.last4, charged.active) == ("4242", False)
    assert [m.last4 for m in on_file] == ["0002"]  # the declined card is still the method on file


async def test_after_a_declined_checkout_card_the_replaced_method_on_file_pays_the_retry(shop):
    org_with_method(shop.db, shop.gateway, card(VISA))
    handle = await shop.billing.buy_flex_consulting("acme", "standard", Decimal("5000.00"), method=card(DECLINED))
    await wait_until_at_rest(shop.env.client, [handle.id])
    invoice = (await handle.query(CheckoutWorkflow.state)).invoice
    await wait_until_at_rest(shop.env.client, [handle.id, payment_workflow_id(invoice)])
    assert (await handle.query(CheckoutWorkflow.state)).payment_status == "FAILED"
    await shop.billing.update_payment_method("acme", card(AMEX))
    await shop.billing.retry_payment("acme")
    assert (await handle.result()).step == "PAID"
    with shop.db.session() as s:
        payments = s.exec(select(Payment).order_by(Payment.attempt)).all()
        last4 = [s.get(PaymentMethod, p.payment_method_id).last4 for p in payments]
    assert [p.status for p in payments] == ["FAILED", "PAID"] and last4 == ["0002", "0005"]
