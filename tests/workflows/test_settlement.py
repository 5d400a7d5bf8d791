"""Month-end settlement (SPEC D1-D8): subscriptions, credits, tax invoices, and exactly-once under re-runs."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio import activity
from temporalio.api.enums.v1 import EventType

from contracts.flows import INVOICE_ID, ORG_ID, settlement_workflow_id
from activities.invoices import InvoiceActivities, InvoiceSummary, SettleInvoiceRequest
from store.cycle import open_cycle
from store.gateway import SandboxGateway
from store.tables import CreditLine, Invoice, Payment
from services.client import BillingClient, CreditLineIn, SubscriptionIn, UsageIn
from starter.scenario import load_scenario
from tests.scenario_harness import closed_invoices, run_scenario
from tests.factories import VISA, card, org_with_method
from worker import build_worker
from workflows.month_end import MonthEndInput, MonthEndWorkflow

SCENARIOS = Path(__file__).parents[1] / "scenarios"


async def _simulate(name: str, database_url: str) -> dict[str, Any]:
    output = await run_scenario(load_scenario(str(SCENARIOS / name)), database_url)
    return output


def _cloud(output: dict[str, Any], org: str) -> list[dict[str, Any]]:
    return [i for i in closed_invoices(output) if i["org"] == org and i["kind"] == "cloud"]


def _tax(output: dict[str, Any], org: str) -> list[dict[str, Any]]:
    return [i for i in output["invoices"] if i["org"] == org and i["kind"] == "tax"]


async def test_monthly_commitment_bills_the_greater_of_usage_or_minimum_and_banks_the_rest(new_database):
    output = await _simulate("subscriptions/monthly_commitment.yaml", new_database())
    cloud = _cloud(output, "acme")
    assert [(i["usage"], i["billed_usage"], i["status"]) for i in cloud] == [
        ("600.00", "1000.00", "INVOICED"), ("1300.00", "1000.00", "INVOICED"), ("1500.00", "1400.00", "INVOICED")]
    assert "400.00 banked" in cloud[0]["explanation"]
    assert [(i["amount_due"], i["currency"]) for i in _tax(output, "acme")] == [
        ("1000.00", "USD"), ("1000.00", "USD"), ("1400.00", "USD")]
    assert output["payments"] == []  # invoiced under the subscription, never charged to the card
    # SPEC A3: a billing e-mail with the flag off: it, the owners and the billing admins.
    emails = [(e["kind"], e["to"]) for e in output["emails"]]
    assert [e for e in emails if e[0] == "tax_invoice"] == [
        ("tax_invoice", ["ap@acme.test", "owner@acme.test", "billing@acme.test"])] * 3
    # D9/D10: no transfer is ever recorded here, so the INVOICED bills go overdue like any other.
    assert {kind for kind, _ in emails} - {"tax_invoice"} <= {"org_suspended", "org_locked"}


async def test_flex_commitment_charges_unused_credits_in_the_last_month(new_database):
    output = await _simulate("subscriptions/flex_commitment.yaml", new_database())
    assert [i["billed_usage"] for i in _cloud(output, "flex")] == ["500.00", "500.00", "2000.00"]
    assert [i["amount_due"] for i in _tax(output, "flex")] == ["500.00", "500.00", "2000.00"]
    # SPEC A3: "only send invoice e-mails to the billing e-mail".
    assert {tuple(e["to"]) for e in output["emails"]} == {("ap@flex.test",)}


async def test_credit_lines_are_drawn_top_down_then_the_card_pays_with_elastic_billing_active(new_database):
    output = await _simulate("subscriptions/credit_lines.yaml", new_database())
    january, february = _cloud(output, "credits")
    assert (january["status"], january["credits_applied"], january["amount_due"]) == ("PREPAID", "400.00", "0.00")
    assert (february["status"], february["credits_applied"]) == ("PAID", "400.00")
    assert [(p["invoice"], p["method"], p["status"], p["amount"]) for p in output["payments"]] == [
        (january["number"], "credits", "PAID", "400.00"), (february["number"], "credits", "PAID", "400.00"),
        (february["number"], "card", "PAID", "100.00")]
    [table] = output["credits"]
    assert table["elastic_billing_active"] is True
    assert [(l["amount"], l["used"], l["status"]) for l in table["lines"]] == [
        ("1000.00", "0.00", "expired"),     # expired before January: never drawn
        ("300.00", "300.00", "active"), ("500.00", "500.00", "active"),
        ("250.00", "0.00", "upcoming")]      # not started: never drawn
    assert _tax(output, "credits") == []  # no subscription, no tax invoice
    # SPEC A3 without a billing e-mail: owners and billing admins.
    assert [e["to"] for e in output["emails"]] == [["owner@credits.test", "billing@credits.test"]]


async def test_marketplace_subscription_has_no_tax_invoice_and_no_tax_invoice_email(new_database):
    output = await _simulate("subscriptions/marketplace.yaml", new_database())
    [invoice] = closed_invoices(output)
    assert (invoice["kind"], invoice["status"], invoice["tax"], invoice["invoiced"]) == ("cloud", "INVOICED", "0.00",
                                                                                        "59.52")
    assert output["emails"] == [] and output["payments"] == []


async def test_prepaid_credits_cover_what_they_can_and_eur_tax_invoices_convert_at_period_end(new_database):
    output = await _simulate("subscriptions/prepaid_eur.yaml", new_database())
    assert [(i["status"], i["credits_applied"]) for i in _cloud(output, "prepaid")] == [("PREPAID", "700.00"),
                                                                                         ("PAID", "300.00")]
    assert [(i["status"], i["amount_due"]) for i in _tax(output, "prepaid")] == [("PREPAID", "0.00"), ("PAID", "0.00")]
    euro = _tax(output, "euro")
    assert [(i["currency"], i["fx_rate"], i["billed_usage"], i["tax"], i["amount_due"]) for i in euro] == [
        ("EUR", "0.90", "1080.00", "216.00", "1296.00"),   # 1,200 USD billed + FR VAT at 0.90 on 31 January
        ("EUR", "0.95", "950.00", "190.00", "1140.00"),   # the 15 February rate is in force at the end of February
    ]
    # SPEC A3 with no billing e-mail set: the tax invoice goes to the owners and billing admins.
    assert {tuple(e["to"]) for e in output["emails"] if e["org"] == "euro" and e["kind"] == "tax_invoice"} == {
        ("owner@euro.test",)}


async def test_every_earlier_scenario_balances_to_the_cent(new_database):
    for name in ["card_paid.yaml", "card_declined_retry.yaml", "paypal_paid.yaml", "tax_by_region.yaml"]:
        await _simulate(name, new_database())


async def _seed(db, gateway, billing: BillingClient, cycle: bool = True) -> None:
    org_with_method(db, gateway, card(VISA), created=datetime(2027, 1, 1, tzinfo=timezone.utc))
    if cycle:  # G0: January's PENDING invoice, as BillingClient.create_org opens it on the organization's first day
        with db.engine.begin() as conn:
            open_cycle(conn, "acme", "2027-01", datetime(2027, 1, 1, tzinfo=timezone.utc))
    await billing.add_credit_line("acme", CreditLineIn(amount=Decimal("50.00"), start="2027-01-01", end="2027-12-31"))
    await billing.add_subscription("acme", SubscriptionIn(type="prepaid", term_start="2027-01-01", term_months=12,
                                                          commitment=Decimal("20.00")))
    await billing.record_usage("acme", [UsageIn(project="web", service="Atlas", sku="M10", start_date="2027-01-01",
                                                end_date="2027-02-01", quantity=Decimal("744"),
                                                unit_price=Decimal("0.20"))])


def _state(db) -> tuple:
    with db.session() as s:
        invoices = [(i.kind, i.status, i.total, i.credits_applied) for i in s.exec(select(Invoice).order_by(Invoice.id))
                    if i.status != "PENDING"]
        assert len([i for i in s.exec(select(Invoice).where(Invoice.status == "PENDING"))]) == 1  # G0: the next cycle
        payments = [(p.method, p.status, p.amount) for p in s.exec(select(Payment).order_by(Payment.id))]
        used = [c.used for c in s.exec(select(CreditLine).order_by(CreditLine.position))]
    return invoices, payments, used


class CrashAfterCommit(InvoiceActivities):
    """Settling commits its transaction, then the worker 'dies' before returning, once."""

    crashed: dict[str, int] = {}

    def __init__(self, db, tax=None) -> None:
        super().__init__(db, tax)
        CrashAfterCommit.crashed = {"settle": 0}

    @activity.defn(name="settle_cloud_invoice")
    def settle_cloud_invoice(self, request: SettleInvoiceRequest) -> InvoiceSummary:
        result = super().settle_cloud_invoice(request)
        if not self.crashed["settle"]:
            self.crashed["settle"] += 1
            raise ConnectionResetError("worker lost after the settlement committed")
        return result


@pytest.mark.parametrize("crash", [False, True])
async def test_rerunning_a_month_end_creates_no_second_invoice_and_no_second_charge(
        time_skipping_env, db, smtp, task_queue, crash, monkeypatch):
    env = time_skipping_env
    gateway = SandboxGateway(db)
    if crash:
        monkeypatch.setattr("worker.InvoiceActivities", CrashAfterCommit)
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    await env.sleep(datetime(2027, 2, 1, tzinfo=timezone.utc) - await env.get_current_time())
    await _seed(db, gateway, billing)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            first = await billing.run_month_end("2027-01")
            settled = await billing.settlement_result("acme", "2027-01")
            await env.client.get_workflow_handle(settled.payment_workflow_id).result()
            before = _state(db)
            # A duplicate schedule fire: another month-end run for the same period.
            duplicate = await env.client.execute_workflow(MonthEndWorkflow.run, MonthEndInput(period="2027-01"),
                                                          id="month-end-duplicate-fire", task_queue=task_queue)
            again = await billing.settle("acme", "2027-01")
            settlement = env.client.get_workflow_handle(settlement_workflow_id("acme", "2027-01"))
            attributes = (await settlement.describe()).typed_search_attributes
            upserts = [e async for e in settlement.fetch_history_events()
                       if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    # The operator finds the settlement by the invoice it closes from its start (the cycle's PENDING invoice, G0),
    # so the workflow writes no search attribute of its own.
    assert (attributes.get(ORG_ID), attributes.get(INVOICE_ID)) == ("acme", settled.invoice.number)
    assert upserts == []
    assert (first.started, first.already_started) == (1, 0)
    assert (duplicate.started, duplicate.already_started) == (0, 1)
    if crash:
        assert CrashAfterCommit.crashed == {"settle": 1}  # it really failed after committing
    assert again.invoice.number == settled.invoice.number
    assert _state(db) == before
    invoices, payments, used = before
    # 148.80 billed: 20.00 prepaid + 50.00 promotional drawn top-down, 78.80 charged to the card once.
    assert invoices == [("cloud", "PAID", Decimal("148.8"), Decimal("70")), ("tax", "PAID", Decimal("148.8"), Decimal("0"))]
    assert payments == [("credits", "PAID", Decimal("70")), ("card", "PAID", Decimal("78.8"))]
    assert used == [Decimal("20"), Decimal("50")]
    assert len([c for c in gateway.charges() if c.idempotency_key.startswith(settled.invoice.number)]) == 1


async def test_a_settlement_with_no_cycle_invoice_is_found_by_the_invoice_it_creates(
        time_skipping_env, db, smtp, task_queue):
    """An organization whose cycle opened no PENDING invoice for the period (one created before G0) starts its
    settlement without an InvoiceId; the settlement sets it once the invoice exists, so the operator still finds it."""
    env = time_skipping_env
    gateway = SandboxGateway(db)
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    await env.sleep(datetime(2027, 2, 1, tzinfo=timezone.utc) - await env.get_current_time())
    await _seed(db, gateway, billing, cycle=False)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            settled = await billing.settle("acme", "2027-01")
            settlement = env.client.get_workflow_handle(settlement_workflow_id("acme", "2027-01"))
            events = [e async for e in settlement.fetch_history_events()]
            attributes = (await settlement.describe()).typed_search_attributes
    started = events[0]
    upserts = [e for e in events if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    assert "InvoiceId" not in started.workflow_execution_started_event_attributes.search_attributes.indexed_fields
    assert (attributes.get(ORG_ID), attributes.get(INVOICE_ID)) == ("acme", settled.invoice.number)
    assert len(upserts) == 1


async def test_activation_code_applied_on_day_12_means_no_card_payment(new_database):
    output = await _simulate("activation/applied_day_12.yaml", new_database())
    assert [p["method"] for p in output["payments"]] == ["credits"]
    assert [(e["kind"], e["to"], e["at"]) for e in output["emails"]][:2] == [
        ("activation_code", ["ap@acme.test"], "2027-01-01T00:00:00Z"),
        ("activation_confirmed", ["ap@acme.test"], "2027-01-12T10:00:00Z")]


async def test_activation_code_never_applied_means_a_non_refundable_card_payment_after_day_30(new_database):
    output = await _simulate("activation/never_applied.yaml", new_database())
    [payment] = output["payments"]
    assert (payment["method"], payment["status"], payment["refundable"], payment["amount"]) == (
        "card", "PAID", False, "773.76")
    assert payment["at"] >= "2027-01-31T00:00:00Z"  # after day 30 of use (first usage 1 January)
    assert output["emails"][0]["kind"] == "activation_code"
