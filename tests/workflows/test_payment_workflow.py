"""The payment workflow on the time-skipping server: charge, decline, e-mail, retry signal, exactly-once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus

from store.gateway import SandboxGateway
from store.tables import EmailMessage, Invoice, Payment, PaymentEvent
from services.client import BillingClient
from starter.idle import wait_until_at_rest
from tests.factories import DECLINED, SCA, VISA, card, closed_invoice, org_with_method
from worker import build_worker
from workflows.payment import PaymentWorkflow, RetryRequest
from contracts.flows import PAYMENT_STATUS, PAYMENT_WAITING_FOR


class CrashAfterCharge(SandboxGateway):
    """The gateway charges, then the worker 'dies' before the activity returns, `crashes` times."""

    def __init__(self, db, crashes: int = 1) -> None:
        super().__init__(db)
        self.crashes = crashes
        self.charge_calls: list[str] = []

    def charge(self, **kwargs):
        self.charge_calls.append(kwargs["idempotency_key"])
        result = super().charge(**kwargs)
        if self.crashes > 0 and not kwargs.get("verification"):
            self.crashes -= 1
            raise ConnectionResetError("worker lost after the gateway charged")
        return result


def _payments(db) -> list[Payment]:
    with db.session() as s:
        return list(s.exec(select(Payment).order_by(Payment.attempt)).all())


def _emails(db) -> list[EmailMessage]:
    with db.session() as s:
        return list(s.exec(select(EmailMessage).order_by(EmailMessage.id)).all())


async def _run(env, db, gateway, smtp, task_queue, invoice):
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    return billing, await billing.charge_invoice(invoice.number)


async def test_card_payment_is_paid_and_receipt_emailed(time_skipping_env, db, smtp, task_queue):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(VISA))
    invoice = closed_invoice(db)
    async with build_worker(time_skipping_env.client, db, gateway, smtp, task_queue=task_queue):
        _, handle = await _run(time_skipping_env, db, gateway, smtp, task_queue, invoice)
        state = await handle.result()
    assert state.status == "PAID" and state.attempts == 1
    [payment] = _payments(db)
    assert (payment.status, payment.idempotency_key, payment.amount) == ("PAID", f"{invoice.number}:1", Decimal("59.52"))
    assert [e.kind for e in _emails(db)] == ["payment_succeeded"]
    with db.session() as s:
        assert s.get(Invoice, invoice.id).status == "PAID"
        assert [e.status for e in s.exec(select(PaymentEvent).order_by(PaymentEvent.id))] == ["NEW", "PAID"]


async def test_declined_card_fails_emails_and_pays_after_update_and_retry_signal(
        time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(DECLINED), billing_email="ap@acme.test")
    invoice = closed_invoice(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        billing, handle = await _run(env, db, gateway, smtp, task_queue, invoice)
        with env.auto_time_skipping_disabled():
            await wait_until_at_rest(env.client, [handle.id])
            failed = await handle.query(PaymentWorkflow.state)
            assert (failed.status, failed.failure_code, failed.waiting_for) == ("FAILED", "card_declined", "retry")
            description = await handle.describe()
            assert description.typed_search_attributes.get(PAYMENT_STATUS) == "FAILED"
            assert description.typed_search_attributes.get(PAYMENT_WAITING_FOR) == "retry"
            with db.session() as s:
                assert s.get(Invoice, invoice.id).status == "FAILED"
            await env.sleep(timedelta(days=3))  # nothing polls: days pass, nothing is charged
            assert len(_payments(db)) == 1
            await billing.update_payment_method("acme", card(VISA))
            await billing.retry_payment("acme", "latest")
        state = await handle.result()
    assert state.status == "PAID" and state.attempts == 2
    assert [(p.status, p.failure_code) for p in _payments(db)] == [("FAILED", "card_declined"), ("PAID", None)]
    emails = _emails(db)
    assert [e.kind for e in emails] == ["payment_failed", "payment_succeeded"]
    assert "ap@acme.test" in emails[0].recipients and invoice.number in emails[0].body


async def test_charge_activity_lost_after_gateway_charged_is_retried_and_charges_once(
        time_skipping_env, db, smtp, task_queue):
    gateway = CrashAfterCharge(db, crashes=1)
    org_with_method(db, gateway, card(VISA))
    invoice = closed_invoice(db)
    async with build_worker(time_skipping_env.client, db, gateway, smtp, task_queue=task_queue):
        _, handle = await _run(time_skipping_env, db, gateway, smtp, task_queue, invoice)
        state = await handle.result()
    assert gateway.crashes == 0  # the activity really was cut off after the charge
    # The retry asked the gateway for the charge by its key and found it: no second charge request (M3).
    assert [key for key in gateway.charge_calls if key.startswith(invoice.number)] == [f"{invoice.number}:1"]
    assert state.status == "PAID"
    invoice_charges = [c for c in gateway.charges() if c.idempotency_key.startswith(invoice.number)]
    assert len(invoice_charges) == 1
    assert [p.status for p in _payments(db)] == ["PAID"]


async def test_duplicate_trigger_finds_the_running_payment(time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(DECLINED))
    invoice = closed_invoice(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        billing, first = await _run(env, db, gateway, smtp, task_queue, invoice)
        with env.auto_time_skipping_disabled():
            await wait_until_at_rest(env.client, [first.id])
            second = await billing.charge_invoice(invoice.number)
            assert second.id == first.id
            assert (await second.describe()).run_id == (await first.describe()).run_id
    assert len(_payments(db)) == 1


async def test_a_retry_during_an_attempt_applies_only_if_that_attempt_fails(time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(SCA))
    invoice = closed_invoice(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        billing, handle = await _run(env, db, gateway, smtp, task_queue, invoice)
        with env.auto_time_skipping_disabled():
            await handle.signal(PaymentWorkflow.retry, RetryRequest())  # arrives while attempt 1 is charging
            await wait_until_at_rest(env.client, [handle.id])
            state = await handle.query(PaymentWorkflow.state)
            # queued while attempt 1 charges, it applies once that attempt fails: exactly one more attempt
            assert state.status == "FAILED_AUTHENTICATION" and state.attempts == 2
            before = state.attempts
            await billing.retry_payment("acme")
            await wait_until_at_rest(env.client, [handle.id])
            state = await handle.query(PaymentWorkflow.state)
            assert state.attempts == before + 1 and state.status == "FAILED_AUTHENTICATION"
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert [p.failure_code for p in _payments(db)] == ["authentication_required"] * state.attempts


async def test_a_retry_after_payment_changes_nothing(time_skipping_env, db, smtp, task_queue):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(VISA))
    invoice = closed_invoice(db)
    async with build_worker(time_skipping_env.client, db, gateway, smtp, task_queue=task_queue):
        _, handle = await _run(time_skipping_env, db, gateway, smtp, task_queue, invoice)
        await handle.signal(PaymentWorkflow.retry, RetryRequest())
        state = await handle.result()
    assert state.attempts == 1 and [p.status for p in _payments(db)] == ["PAID"]


async def test_no_payment_method_fails_with_a_clear_code(time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, None)
    invoice = closed_invoice(db)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        _, handle = await _run(env, db, gateway, smtp, task_queue, invoice)
        with env.auto_time_skipping_disabled():
            await wait_until_at_rest(env.client, [handle.id])
            state = await handle.query(PaymentWorkflow.state)
    assert (state.status, state.failure_code) == ("FAILED", "no_payment_method")


async def test_retry_for_an_org_without_failed_payment_finds_nothing_to_do(time_skipping_env, db, smtp, task_queue):
    from contracts.outcomes import NothingToDo

    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(VISA))
    billing = BillingClient(time_skipping_env.client, db, gateway, task_queue=task_queue)
    with pytest.raises(NothingToDo, match="nothing to retry: acme has no failed invoice"):
        await billing.retry_payment("acme")
