"""Activation codes and the 30-day grace period (SPEC D2) on the time-skipping server."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from email import message_from_bytes

import pytest
from sqlmodel import select

from store.gateway import SandboxGateway
from store.tables import Activation, CreditLine, Invoice, Payment
from contracts.outcomes import NothingToDo
from services.client import BillingClient, BillingError, SubscriptionIn, UsageIn
from starter.idle import wait_until_at_rest
from tests.factories import VISA, card, org_with_method
from tests.leaks import assert_no_secrets, decoded_texts
from worker import build_worker
from workflows.activation import ActivationWorkflow
from workflows.payment import PaymentWorkflow
from contracts.flows import ACTIVATION_STATUS, GRACE_ENDS_AT, payment_workflow_id

JAN_1 = datetime(2027, 1, 1, tzinfo=timezone.utc)


class World:
    """One organization with a pending prepaid subscription, a worker, and the customer's mailbox."""

    def __init__(self, env, db, smtp_server, task_queue) -> None:
        self.env, self.db, self.task_queue = env, db, task_queue
        self.inbox, self.smtp = smtp_server
        self.gateway = SandboxGateway(db)
        self.billing = BillingClient(env.client, db, self.gateway, clock=env.get_current_time, task_queue=task_queue)
        self.org = f"acme{task_queue[-6:]}"  # the shared SMTP inbox is read by organization

    async def start(self, first_usage: date) -> None:
        await self.advance_to(JAN_1)
        org_with_method(self.db, self.gateway, card(VISA), org_id=self.org, created=JAN_1)
        self.workflow_id = await self.billing.add_subscription(
            self.org, SubscriptionIn(type="prepaid", term_start=date(2027, 1, 1), term_months=12,
                                     commitment=Decimal("5000.00")), activation_code="pending")
        await self.billing.record_usage(self.org, [UsageIn(
            project="web", service="Atlas", sku="M40", start_date=first_usage, end_date=date(2027, 2, 1),
            quantity=Decimal("100"), unit_price=Decimal("1.00"))])
        await self.idle()

    async def advance_to(self, moment: datetime) -> None:
        now = await self.env.get_current_time()
        if moment > now:
            await self.env.sleep(moment - now)
        await self.idle()

    async def idle(self) -> None:
        if hasattr(self, "workflow_id"):
            await wait_until_at_rest(self.env.client, [self.workflow_id])

    async def month_end(self, period: str) -> None:
        await self.billing.run_month_end(period)
        result = await self.billing.settlement_result(self.org, period)
        if result.payment_workflow_id:
            await self.env.client.get_workflow_handle(result.payment_workflow_id).result()
        await self.idle()

    def codes(self) -> list[str]:
        found = []
        for envelope in self.inbox.messages:
            message = message_from_bytes(envelope.content)
            if message["Subject"] == f"Your subscription activation code for organization {self.org}":
                found += re.findall(r"Activation code: (\S+)", message.get_payload(decode=True).decode())
        return found

    def card_payments(self) -> list[Payment]:
        with self.db.session() as s:
            return list(s.exec(select(Payment).where(Payment.org_id == self.org, Payment.method == "card")))

    def card_charges(self) -> int:
        with self.db.session() as s:
            numbers = [i.number for i in s.exec(select(Invoice).where(Invoice.org_id == self.org))]
        return len([c for c in self.gateway.charges() if c.idempotency_key.split(":")[0] in numbers])


@pytest.fixture
async def world(time_skipping_env, db, smtp_server, task_queue):
    world = World(time_skipping_env, db, smtp_server, task_queue)
    async with build_worker(time_skipping_env.client, db, world.gateway, world.smtp, task_queue=task_queue):
        with time_skipping_env.auto_time_skipping_disabled():
            yield world


async def test_code_applied_on_day_29_means_no_card_charge(world):
    await world.start(first_usage=date(2027, 1, 1))
    handle = world.env.client.get_workflow_handle(world.workflow_id)
    description = await handle.describe()
    assert description.typed_search_attributes.get(ACTIVATION_STATUS) == "GRACE"
    assert description.typed_search_attributes.get(GRACE_ENDS_AT) == datetime(2027, 1, 31, tzinfo=timezone.utc)
    await world.advance_to(datetime(2027, 1, 29, 12, tzinfo=timezone.utc))
    state = await world.billing.apply_activation_code(world.org, world.codes()[-1])
    assert state.status == "APPLIED"
    await world.advance_to(datetime(2027, 2, 1, tzinfo=timezone.utc))
    await world.month_end("2027-01")
    assert world.card_payments() == [] and world.card_charges() == 0
    with world.db.session() as s:
        [line] = s.exec(select(CreditLine).where(CreditLine.org_id == world.org)).all()
    assert (line.kind, line.used) == ("prepaid", Decimal("100"))  # the subscription's credits paid January


async def test_code_never_applied_charges_the_grace_usage_exactly_once_non_refundable(world):
    await world.start(first_usage=date(2027, 1, 15))  # grace ends 14 February: January is held at month-end
    await world.advance_to(datetime(2027, 2, 1, tzinfo=timezone.utc))
    await world.month_end("2027-01")
    assert world.card_payments() == []  # held: still within the 30 days of use
    await world.advance_to(datetime(2027, 2, 20, tzinfo=timezone.utc))
    [payment] = world.card_payments()
    assert (payment.status, payment.refundable) == ("PAID", False)
    assert world.card_charges() == 1
    state = await world.env.client.get_workflow_handle(world.workflow_id).query(ActivationWorkflow.state)
    assert state.status == "GRACE_EXPIRED" and len(state.charged_invoices) == 1
    with world.db.session() as s:
        invoice = s.get(Invoice, payment.invoice_id)
    with pytest.raises(BillingError, match="non-refundable"):
        await world.billing.refund_payment(world.org, invoice.number)
    assert world.card_payments()[0].status == "PAID"


async def test_applying_after_the_grace_charge_does_not_charge_twice(world):
    await world.start(first_usage=date(2027, 1, 15))
    await world.advance_to(datetime(2027, 2, 1, tzinfo=timezone.utc))
    await world.month_end("2027-01")
    await world.advance_to(datetime(2027, 2, 20, tzinfo=timezone.utc))
    assert world.card_charges() == 1
    state = await world.billing.apply_activation_code(world.org, world.codes()[-1])
    assert state.status == "APPLIED" and len(state.charged_invoices) == 1
    assert world.card_charges() == 1 and [p.status for p in world.card_payments()] == ["PAID"]
    with world.db.session() as s:
        [line] = s.exec(select(CreditLine).where(CreditLine.org_id == world.org)).all()
    assert line.used == 0  # the charged month is not drawn from the credits as well


async def test_a_wrong_code_is_refused_by_the_validator_and_changes_nothing(world):
    await world.start(first_usage=date(2027, 1, 1))
    with pytest.raises(BillingError, match="wrong activation code"):
        await world.billing.apply_activation_code(world.org, "AAAAA-BBBBB-CCCCC-DDDDD")
    state = await world.env.client.get_workflow_handle(world.workflow_id).query(ActivationWorkflow.state)
    assert state.status == "GRACE"
    with world.db.session() as s:
        assert s.exec(select(Activation).where(Activation.org_id == world.org)).one().status == "PENDING"
    await world.billing.apply_activation_code(world.org, world.codes()[-1].lower())  # typed loosely, still valid
    with pytest.raises(NothingToDo, match="already been applied"):  # a repeat: harmless
        await world.billing.apply_activation_code(world.org, world.codes()[-1])


async def test_a_reissued_code_works_the_old_one_does_not_and_the_clock_goes_on(world):
    await world.start(first_usage=date(2027, 1, 1))
    await world.advance_to(datetime(2027, 1, 10, tzinfo=timezone.utc))
    assert await world.billing.reissue_activation_code(world.org) == 2
    old, new = world.codes()
    assert old != new
    description = await world.env.client.get_workflow_handle(world.workflow_id).describe()
    assert description.typed_search_attributes.get(GRACE_ENDS_AT) == datetime(2027, 1, 31, tzinfo=timezone.utc)
    with pytest.raises(BillingError, match="wrong activation code"):
        await world.billing.apply_activation_code(world.org, old)
    assert (await world.billing.apply_activation_code(world.org, new)).status == "APPLIED"


async def test_the_code_is_never_stored_logged_or_in_the_history(world):
    await world.start(first_usage=date(2027, 1, 1))
    [code] = world.codes()
    await world.billing.apply_activation_code(world.org, code)
    history = await world.env.client.get_workflow_handle(world.workflow_id).fetch_history()
    # D2: searched in every decoded payload too (inputs, updates' arguments, results): the history's JSON holds them
    # base64-encoded, where a text search sees nothing.
    assert assert_no_secrets([history], set()) > 0
    decoded = "\n".join(decoded_texts(history))
    with world.db.engine.connect() as conn:
        rows = " ".join(str(r) for table in ("activations", "email_outbox")
                        for r in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    for text in (history.to_json(), decoded, rows):
        assert code not in text and code.replace("-", "") not in text
    assert code[-5:] in rows  # the outbox keeps the masked code: enough for support to tell codes apart
