"""SPEC D10, G2: invoices paid outside the card flow (wire/ACH), forgiven, refunded, and PAY NOW, each through the
invoice's payment workflow; payments started by the client use the configured durations (H4)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from billing.config import BillingDurations
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import InvoiceForgiveness, Payment, SandboxCharge
from contracts.outcomes import NothingToDo
from services.client import BillingClient, BillingError
from starter.scenario import load_scenario, load_yaml, parse_scenario
from tests.factories import VISA, card, closed_invoice, org_with_method
from worker import build_worker
from workflows.payment import ChargeInvoiceInput
from tests.scenario_harness import closed_invoices, run_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rows(items: list[dict], *keys: str) -> list[tuple]:
    return [tuple(item[k] for k in keys) for item in items]


async def test_wire_then_ach_pay_an_invoiced_bill_and_an_unpaid_one_goes_overdue(new_database):
    output = await run_scenario(load_scenario(str(SCENARIOS / "payments/wire_payment_invoiced.yaml")), new_database())
    january = {i["org"]: i for i in output["invoices"] if i["period"] == "2025-01" and i["kind"] == "cloud"}
    assert (january["payer"]["status"], january["payer"]["invoiced"]) == ("PAID", "0.00")
    assert (january["late"]["status"], january["late"]["invoiced"]) == ("INVOICED", "1000.00")
    tax = [i for i in output["invoices"] if i["cloud_invoice"] == january["payer"]["number"]]
    assert _rows(tax, "status", "amount_due") == [("PAID", "0.00")]
    assert _rows(output["payments"], "org", "invoice", "method", "status", "amount", "at") == [
        ("payer", january["payer"]["number"], "wire", "PAID", "400.00", "2025-02-05T10:00:00Z"),
        ("payer", january["payer"]["number"], "ach", "PAID", "600.00", "2025-02-10T10:00:00Z")]
    # D9: the unpaid INVOICED bill is overdue like any other: suspended on day 31 after its date.
    assert {o["org"]: o["status"] for o in output["organizations"]} == {"payer": "ACTIVE", "late": "SUSPENDED"}
    assert ("late", "org_suspended", "2025-03-04T00:00:00Z") in _rows(output["emails"], "org", "kind", "at")


async def test_operator_forgives_a_declined_invoice_with_an_audit_and_support_refunds_a_paid_one(new_database):
    url = new_database()
    output = await run_scenario(load_scenario(str(SCENARIOS / "payments/forgive_and_refund.yaml")), database_url=url)
    status = {i["org"]: (i["status"], i["amount_due"]) for i in closed_invoices(output)}
    assert status == {"declined": ("FORGIVEN", "0.00"), "refunded": ("PAID", "0.00")}
    paid, refund = [p for p in output["payments"] if p["org"] == "refunded"]
    assert _rows([paid, refund], "status", "amount", "attempt") == [("PAID", "59.52", 1), ("REFUNDED", "59.52", 2)]
    # The month-end charge runs moments after midnight: the business clock moves with the server's, which keeps
    # running (a second or so under load) while the settlement works. The refund is at the event's instant.
    assert timedelta(0) <= _instant(paid["at"]) - _instant("2025-02-01T00:00:00Z") < timedelta(minutes=1)
    assert refund["at"] == "2025-02-04T10:00:00Z"
    db = Database(url)
    try:
        with db.session() as s:
            [audit] = s.exec(select(InvoiceForgiveness)).all()
            refunds = s.exec(select(SandboxCharge).where(SandboxCharge.kind == "refund",
                                                         SandboxCharge.idempotency_key.startswith("refund:"))).all()
        assert (audit.org_id, audit.amount, audit.reason, audit.forgiven_by) == (
            "declined", Decimal("59.52"), "goodwill after outage", "simulator")
        [refunded] = [i["number"] for i in closed_invoices(output) if i["org"] == "refunded"]
        assert [(r.idempotency_key, r.amount) for r in refunds] == [(f"refund:{refunded}:1", Decimal("59.52"))]
    finally:
        db.dispose()


NON_REFUNDABLE = """
start: 2025-01-01T00:00:00Z
until: 2025-02-10T00:00:00Z
orgs:
  acme:
    owners: [owner@acme.test]
    billing_profile: {country: US, state: NY, city: New York, address_line1: 1 Main St, postal_code: "10001"}
    payment_method: {type: card, number: "4242424242424242", exp: "12/30", cvc: "123", name: Ada Lovelace}
    subscription: {type: prepaid, term_start: 2025-01-01, term_months: 12, commitment: "5000.00",
                   activation_code: pending}
usage:
  - {org: acme, project: web, service: Atlas Dedicated, sku: M40, from: 2025-01-01, to: 2025-02-01,
     quantity: "744", unit: hours, unit_price: "1.04"}
events:
  - {at: 2025-02-05T10:00:00Z, do: refund_payment, org: acme, invoice: latest}
"""


async def test_refund_of_a_charge_after_a_missed_activation_is_refused_naming_d2(new_database):
    with pytest.raises(ValueError, match=r"refund_payment .*acme.*non-refundable \(SPEC D2\)"):
        await run_scenario(parse_scenario(load_yaml(NON_REFUNDABLE)), new_database())


async def test_pay_now_refund_and_repeats_through_the_client(time_skipping_env, db, smtp, task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(VISA))
    invoice = closed_invoice(db)
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        await (await billing.charge_invoice(invoice.number)).result()
        with pytest.raises(NothingToDo, match=f"nothing to pay: {invoice.number} is PAID"):
            await billing.pay_now("acme", invoice.number)
        with pytest.raises(NothingToDo, match="nothing to forgive"):
            await billing.forgive_invoice("acme", invoice.number, reason="late")
        state = await billing.refund_payment("acme")
        assert [p.status for p in state.payments] == ["REFUNDED"]
        with pytest.raises(NothingToDo, match="already REFUNDED"):
            await billing.refund_payment("acme", invoice.number)
        with pytest.raises(BillingError, match="no invoice"):
            await billing.record_payment("acme", "INV-NOPE", "wire", Decimal("1.00"))
    with db.session() as s:
        rows = s.exec(select(Payment).order_by(Payment.attempt)).all()
    assert [(p.attempt, p.status, p.idempotency_key) for p in rows] == [
        (1, "PAID", f"{invoice.number}:1"), (2, "REFUNDED", f"refund:{invoice.number}:1")]
    assert len(gateway.charges(kind="refund")) == 2  # the card's 1.00 verification (A5) and this refund


async def test_charge_invoice_starts_the_payment_with_the_configured_durations(time_skipping_env, db, smtp,
                                                                               task_queue):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card(VISA))
    invoice = closed_invoice(db)
    durations = BillingDurations(rbi_authorization_window="1d")
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue,
                            durations=durations)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue, durations=durations):
        handle = await billing.charge_invoice(invoice.number)
        await handle.result()
        history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [request] = await env.client.data_converter.decode(started.input.payloads, [ChargeInvoiceInput])
    assert request.rbi_authorization_window == timedelta(days=1)
