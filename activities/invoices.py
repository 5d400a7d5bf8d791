"""Invoice activities: close a period's cloud invoice from the usage rows (once per organization and period), finalize it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities._context import activity_log_context
from billing.db import Database
from billing.invoicing import CLOUD_CURRENCY, UsageItem, build_cloud_invoice, invoice_number
from billing.tables import Invoice, InvoiceLine, InvoiceStatus, InvoiceTaxLine, UsageLine
from billing.tax import TaxLine


class CloseInvoiceRequest(BaseModel):
    org_id: str
    period: str  # YYYY-MM
    at: datetime


class FinalizeRequest(BaseModel):
    invoice_id: int
    tax_lines: list[TaxLine]


class InvoiceSummary(BaseModel):
    invoice_id: int
    number: str
    org_id: str
    period: str
    kind: str
    status: str
    currency: str
    billed_usage: Decimal
    tax: Decimal
    total: Decimal
    amount_due: Decimal
    created: bool  # False when the invoice already existed (a re-run settlement)


def summarize(invoice: Invoice, created: bool) -> InvoiceSummary:
    return InvoiceSummary(invoice_id=invoice.id, number=invoice.number, org_id=invoice.org_id,
                          period=invoice.period, kind=invoice.kind, status=invoice.status,
                          currency=invoice.currency, billed_usage=invoice.billed_usage, tax=invoice.tax,
                          total=invoice.total, amount_due=invoice.amount_due, created=created)


class InvoiceActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="close_cloud_invoice")
    def close_cloud_invoice(self, request: CloseInvoiceRequest) -> InvoiceSummary:
        key = f"{request.org_id}:{request.period}:cloud"
        with activity_log_context(org_id=request.org_id, period=request.period) as log:
            existing = self._by_key(key)
            if existing is not None:
                log.info("cloud invoice already closed", invoice=existing.number)
                return summarize(existing, created=False)
            try:
                invoice = self._create(key, request)
            except IntegrityError:
                # A concurrent attempt closed it first: the unique business key refused the duplicate.
                return summarize(self._by_key(key), created=False)
            log.info("cloud invoice closed", invoice=invoice.number, total=str(invoice.total),
                     status=invoice.status)
            return summarize(invoice, created=True)

    @activity.defn(name="finalize_invoice")
    def finalize_invoice(self, request: FinalizeRequest) -> InvoiceSummary:
        """Attach the tax lines; total = billed usage + tax (SPEC C4); CLOSED, or FREE at 0.00 (D8)."""
        with self.db.session() as s:
            invoice = s.get(Invoice, request.invoice_id)
            if invoice.status != InvoiceStatus.PENDING:
                return summarize(invoice, created=False)
            tax = sum((line.amount for line in request.tax_lines), Decimal("0"))
            for position, line in enumerate(request.tax_lines):
                s.add(InvoiceTaxLine(invoice_id=invoice.id, position=position, **line.model_dump()))
            invoice.tax = tax
            invoice.total = invoice.billed_usage + tax
            invoice.amount_due = invoice.total
            invoice.status = InvoiceStatus.FREE if invoice.total == 0 else InvoiceStatus.CLOSED
            s.add(invoice)
        with activity_log_context(org_id=invoice.org_id, invoice=invoice.number) as log:
            log.info("invoice finalized", total=str(invoice.total), tax=str(invoice.tax), status=invoice.status)
        return summarize(invoice, created=True)

    def _by_key(self, key: str) -> Invoice | None:
        with self.db.session() as s:
            return s.exec(select(Invoice).where(Invoice.key == key)).first()

    def _create(self, key: str, request: CloseInvoiceRequest) -> Invoice:
        with self.db.session() as s:
            rows = s.exec(select(UsageLine).where(UsageLine.org_id == request.org_id,
                                                  UsageLine.period == request.period)
                          .order_by(UsageLine.id)).all()
            draft = build_cloud_invoice(UsageItem.model_validate(row, from_attributes=True) for row in rows)
            # PENDING until the tax is known (finalize_invoice); elastic billing: billed usage = usage.
            invoice = Invoice(key=key, org_id=request.org_id, kind="cloud", period=request.period,
                              status=InvoiceStatus.PENDING, currency=CLOUD_CURRENCY, usage=draft.usage,
                              billed_usage=draft.usage, tax=Decimal("0"), total=draft.usage,
                              amount_due=draft.usage, created_at=request.at)
            s.add(invoice)
            s.flush()
            invoice.number = invoice_number(request.period, invoice.id)
            for position, line in enumerate(draft.lines):
                s.add(InvoiceLine(invoice_id=invoice.id, position=position, **line.model_dump()))
            s.add(invoice)
        return invoice
