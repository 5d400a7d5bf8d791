"""Support plan activities (SPEC B1): record plan changes, and add the month's support line to a cloud invoice."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel
from sqlmodel import Session, func, select
from temporalio import activity

from activities._context import activity_log_context
from billing.db import Database
from billing.invoicing import first_day_of, last_day_of
from billing.support import PlanChange, PlanPeriod, SupportPlan, change_plan, support_charges
from billing.tables import Invoice, InvoiceLine, InvoiceStatus, SupportPlanPeriod


class PlanChangeRequest(BaseModel):
    org_id: str
    plan: SupportPlan
    at: datetime


class SupportChargeRequest(BaseModel):
    invoice_id: int


def load_periods(s: Session, org_id: str) -> list[SupportPlanPeriod]:
    return list(s.exec(select(SupportPlanPeriod).where(SupportPlanPeriod.org_id == org_id)
                       .order_by(SupportPlanPeriod.start_date, SupportPlanPeriod.id)))


def _domain(rows: list[SupportPlanPeriod]) -> list[PlanPeriod]:
    return [PlanPeriod(plan=r.plan, start=r.start_date, end=r.end_date, trial_ends=r.trial_ends,
                       billing_stopped=r.billing_stopped) for r in rows]


class SupportActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="record_support_plan_change")
    def record_change(self, request: PlanChangeRequest) -> PlanChange:
        with activity_log_context(org_id=request.org_id, plan=request.plan) as log, self.db.session() as s:
            rows = load_periods(s, request.org_id)
            periods, change = change_plan(_domain(rows), request.plan, request.at.date())
            for row in rows:
                s.delete(row)
            s.flush()
            for p in periods:
                s.add(SupportPlanPeriod(org_id=request.org_id, plan=p.plan, start_date=p.start, end_date=p.end,
                                        trial_ends=p.trial_ends, billing_stopped=p.billing_stopped,
                                        recorded_at=request.at))
            log.info("support plan change recorded", effective=change.effective.isoformat())
            return change

    @activity.defn(name="add_support_charges")
    def add_charges(self, request: SupportChargeRequest) -> Decimal:
        """The support charge is its own line on the cloud invoice, part of its usage (taxed as Atlas, TAX.md)."""
        with self.db.session() as s:
            return add_support_lines(s, s.get(Invoice, request.invoice_id))


def add_support_lines(s: Session, invoice: Invoice) -> Decimal:
    """Add the month's support lines to a PENDING cloud invoice (once) and return their total."""
    if invoice.status != InvoiceStatus.PENDING:
        return Decimal("0")
    rows = load_periods(s, invoice.org_id)
    if not rows:  # no plan ever chosen: Basic, free (B1)
        return Decimal("0")
    if s.exec(select(InvoiceLine.position).where(InvoiceLine.invoice_id == invoice.id,
                                           InvoiceLine.service == "Support")).first() is not None:
        return Decimal("0")  # added already
    lines = support_charges(_domain(rows), invoice.period, invoice.usage)
    if not lines:
        return Decimal("0")
    position = s.exec(select(func.count()).select_from(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).one()
    first, last = first_day_of(invoice.period), last_day_of(invoice.period)
    for offset, line in enumerate(lines):
        s.add(InvoiceLine(invoice_id=invoice.id, position=position + offset, project="-", service="Support",
                          sku=f"SUPPORT_{line.plan.value.upper()}", start_date=first, end_date=last,
                          quantity=Decimal(line.days), unit="days", unit_price=line.amount / line.days,
                          amount=line.amount))
    total = sum((line.amount for line in lines), Decimal("0"))
    invoice.usage += total
    invoice.billed_usage += total
    invoice.total += total
    invoice.amount_due += total
    s.add(invoice)
    return total
