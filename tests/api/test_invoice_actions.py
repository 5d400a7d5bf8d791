"""Invoice actions through the API (SPEC F3, G2/E2, E4, D10) on the time-skipping server with a real worker:
each reaches the invoice's payment workflow through BillingClient, and answers what it did."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from billing.permissions import ApiRole
from services import apikeys
from starter.idle import wait_until_at_rest
from store.gateway import SandboxGateway
from store.tables import Invoice, InvoiceForgiveness, Payment
from tests.api.conftest import OTHER, OWN, auth, make_keys
from tests.api.workflow_api import workflow_api
from tests.factories import DECLINED, VISA, card, closed_invoice, org_with_method
from tests.workflows.test_rbi import India
from workflows.payment import PaymentWorkflow

pytestmark = pytest.mark.asyncio


def payments(db, number: str) -> list[tuple[str, str, Decimal]]:
    with db.session() as s:
        return [(p.method, p.status, p.amount) for p in s.exec(
            select(Payment).join(Invoice, Invoice.id == Payment.invoice_id).where(Invoice.number == number)
            .order_by(Payment.attempt))]


def invoice_status(db, number: str) -> str:
    with db.session() as s:
        return s.exec(select(Invoice.status).where(Invoice.number == number)).one()


@pytest.fixture
def declined(db):
    """acme pays with a card that is declined; globex exists beside it; a key per role."""
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(DECLINED), org_id=OWN)
    org_with_method(db, gateway, card(VISA), org_id=OTHER)
    return gateway, make_keys(db)


async def failed_payment(world, db) -> tuple[str, object]:
    invoice = closed_invoice(db, org_id=OWN)
    handle = await world.billing.charge_invoice(invoice.number)
    await wait_until_at_rest(world.billing.temporal, [handle.id])
    assert invoice_status(db, invoice.number) == "FAILED"
    return invoice.number, handle


async def test_a_failed_payment_retried_through_the_api_is_paid_once(time_skipping_env, db, smtp, task_queue,
                                                                     declined):
    gateway, keys = declined
    env = time_skipping_env
    async with workflow_api(env, db, smtp, task_queue, gateway) as world:
        with env.auto_time_skipping_disabled():
            number, handle = await failed_payment(world, db)
            await world.billing.update_payment_method(OWN, card(VISA))
            headers = {**auth(keys[ApiRole.BILLING_ADMIN]), "Idempotency-Key": "retry-once"}
            first = await world.http.post(f"/v1/invoices/{number}/retry", headers=headers)
            assert first.status_code == 202, first.text
            assert first.json() == {"invoice_number": number, "workflow_id": handle.id, "requested": "retry"}
            again = await world.http.post(f"/v1/invoices/{number}/retry", headers=headers)  # the client retried
            assert again.status_code == 202 and again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
        state = await handle.result()
        assert state.status == "PAID" and state.attempts == 2
        late = await world.http.post(f"/v1/invoices/{number}/retry", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
        assert late.status_code == 409 and late.json()["type"] == "/problems/nothing-to-do"
        assert f"{number} is PAID" in late.json()["detail"]
    assert payments(db, number) == [("card", "FAILED", Decimal("59.52")), ("card", "PAID", Decimal("59.52"))]
    assert invoice_status(db, number) == "PAID"


async def test_pay_now_answers_the_payment_state(time_skipping_env, db, smtp, task_queue, declined):
    gateway, keys = declined
    env = time_skipping_env
    async with workflow_api(env, db, smtp, task_queue, gateway) as world:
        with env.auto_time_skipping_disabled():
            number, _ = await failed_payment(world, db)
            await world.billing.update_payment_method(OWN, card(VISA))
            response = await world.http.post(f"/v1/invoices/{number}/pay-now",
                                             headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["invoice_number"], body["status"]) == (number, "PAID")
            again = await world.http.post(f"/v1/invoices/{number}/pay-now",
                                          headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
            assert again.status_code == 409 and "nothing to pay" in again.json()["detail"]
    assert [p[1] for p in payments(db, number)] == ["FAILED", "PAID"]


async def test_wire_payments_forgiveness_and_refund_are_the_operators(time_skipping_env, db, smtp, task_queue,
                                                                      declined):
    gateway, keys = declined
    env = time_skipping_env
    operator = auth(keys[ApiRole.OPERATOR])
    async with workflow_api(env, db, smtp, task_queue, gateway) as world:
        with env.auto_time_skipping_disabled():
            number, _ = await failed_payment(world, db)
            owner = await world.http.post(f"/v1/invoices/{number}/payments", json={"method": "wire",
                                                                                   "amount": "10.00"},
                                          headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
            assert owner.status_code == 403
            floated = await world.http.post(f"/v1/invoices/{number}/payments", params={"org": OWN},
                                            json={"method": "wire", "amount": 10.5}, headers=operator)
            assert floated.status_code == 422 and floated.json()["errors"][0]["field"] == "body.amount"
            partial = await world.http.post(f"/v1/invoices/{number}/payments", params={"org": OWN},
                                            json={"method": "wire", "amount": "50.00", "reference": "BANK-1"},
                                            headers=operator)
            assert partial.status_code == 200, partial.text
            assert Decimal(partial.json()["outstanding"]) == Decimal("9.52")
            blank = await world.http.post(f"/v1/invoices/{number}/forgive", params={"org": OWN},
                                          json={"reason": "  "}, headers=operator)
            assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "body.reason"
            forgiven = await world.http.post(f"/v1/invoices/{number}/forgive", params={"org": OWN},
                                             json={"reason": "goodwill"}, headers=operator)
            assert forgiven.status_code == 200, forgiven.text
            assert forgiven.json()["forgiven"] is True
            nothing = await world.http.post(f"/v1/invoices/{number}/refund", params={"org": OWN}, headers=operator)
            assert nothing.status_code == 409  # paid by wire and forgiven: no card charge to refund
    assert invoice_status(db, number) == "FORGIVEN"
    with db.session() as s:
        [audit] = s.exec(select(InvoiceForgiveness)).all()
    assert (audit.reason, audit.forgiven_by) == ("goodwill", "operator test key")
    assert ("wire", "PAID", Decimal("50.00")) in payments(db, number)


async def test_refund_of_a_card_payment(time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(VISA), org_id=OWN)
    keys = make_keys_own_only(db)
    async with workflow_api(env, db, smtp, task_queue, gateway) as world:
        invoice = closed_invoice(db, org_id=OWN)
        handle = await world.billing.charge_invoice(invoice.number)
        assert (await handle.result()).status == "PAID"
        refunded = await world.http.post(f"/v1/invoices/{invoice.number}/refund", params={"org": OWN},
                                         headers=auth(keys[ApiRole.OPERATOR]))
        assert refunded.status_code == 200, refunded.text
        assert [p["status"] for p in refunded.json()["payments"]] == ["REFUNDED"]
        again = await world.http.post(f"/v1/invoices/{invoice.number}/refund", params={"org": OWN},
                                      headers=auth(keys[ApiRole.OPERATOR]))
        assert again.status_code == 409 and "already REFUNDED" in again.json()["detail"]
    assert ("card", "REFUNDED", Decimal("59.52")) in payments(db, invoice.number)


def make_keys_own_only(db) -> dict[ApiRole, str]:
    return {role: apikeys.create_key(db, role, org_id=None if role is ApiRole.OPERATOR else OWN,
                                     name=f"{role.value} key").secret
            for role in (ApiRole.OPERATOR, ApiRole.ORGANIZATION_OWNER)}


async def test_authorize_an_india_charge_above_the_threshold(time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    india = India(env, db, smtp, task_queue)
    async with workflow_api(env, db, smtp, task_queue, india.gateway) as world:
        with env.auto_time_skipping_disabled():
            await india.setup("300.00")  # 24,960 INR: E4 asks the customer to authorize
            keys = make_keys_own_only(db)
            assert (await india.idle()).waiting_for == "authorization"
            number = india.invoice.number
            response = await world.http.post(f"/v1/invoices/{number}/authorize",
                                             headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
            assert response.status_code == 202, response.text
            assert response.json()["requested"] == "authorize"
            await india.idle()
            await india.advance(timedelta(days=4))
            assert [p.status for p in india.payments()] == ["PAID"]
            late = await world.http.post(f"/v1/invoices/{number}/authorize",
                                         headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
            assert late.status_code == 409 and "nothing to authorize" in late.json()["detail"]


@pytest.mark.parametrize("action, body", [("retry", None), ("pay-now", None), ("authorize", None),
                                          ("payments", {"method": "ach", "amount": "1.00"}),
                                          ("forgive", {"reason": "x"}), ("refund", None)])
async def test_another_organizations_invoice_is_404_and_nothing_moves(time_skipping_env, db, smtp, task_queue,
                                                                      declined, action, body):
    gateway, keys = declined
    env = time_skipping_env
    async with workflow_api(env, db, smtp, task_queue, gateway) as world:
        with env.auto_time_skipping_disabled():
            number, handle = await failed_payment(world, db)
            response = await world.http.post(f"/v1/invoices/{number}/{action}", json=body,
                                             headers=auth(keys.other_org_owner))
            # An operator's action refuses the key's role before looking for the invoice: 403, revealing nothing.
            assert response.status_code == (403 if action in ("payments", "forgive", "refund") else 404)
            named = await world.http.post(f"/v1/invoices/{number}/{action}", params={"org": OWN}, json=body,
                                          headers=auth(keys.other_org_owner))
            assert named.status_code == 404
            assert (await handle.query(PaymentWorkflow.state)).attempts == 1
    assert payments(db, number) == [("card", "FAILED", Decimal("59.52"))]
