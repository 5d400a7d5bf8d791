"""Flex Consulting activities (SPEC B3): price the cart with the Flex Consulting tax column, issue the invoice."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities.invoices import InvoiceSummary, summarize
from activities.tax import TaxQuote, quote
from store.db import Database
from billing.invoicing import invoice_number, period_of
from billing.money import round_money
from store.tables import Invoice, InvoiceLine, InvoiceStatus, InvoiceTaxLine
from billing.tax import OfflineRegistry, Product
from contracts.consulting import CartRequest, ConsultingInvoiceRequest  # noqa: F401


class ConsultingActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="price_flex_consulting")
    def price(self, request: CartRequest) -> TaxQuote:
        """The cart's tax, from the address the customer gave at checkout (C3: Flex Consulting column)."""
        return quote(country=request.country, subdivision=request.state, tax_id=request.tax_id,
                     product=Product.FLEX_CONSULTING, amount=round_money(request.amount, "USD"), currency="USD",
                     on=request.at.date(), registry=OfflineRegistry())

    @activity.defn(name="issue_consulting_invoice")
    def issue_invoice(self, request: ConsultingInvoiceRequest) -> InvoiceSummary:
        period = period_of(request.at.date())
        key = f"{request.org_id}:{period}:consulting:{request.purchase_id}"
        try:
            with self.db.session() as s:
                existing = s.exec(select(Invoice).where(Invoice.key == key)).first()
                if existing is not None:
                    return summarize(s, existing, created=False)
                amount = round_money(request.amount, "USD")
                tax = sum((line.amount for line in request.tax_lines), Decimal("0"))
                invoice = Invoice(key=key, org_id=request.org_id, kind="consulting", period=period,
                                  status=InvoiceStatus.CLOSED, currency="USD", usage=amount, billed_usage=amount,
                                  tax=tax, total=amount + tax, amount_due=amount + tax, created_at=request.at)
                s.add(invoice)
                s.flush()
                invoice.number = invoice_number(period, invoice.id)
                s.add(InvoiceLine(invoice_id=invoice.id, position=0, project="-", service="Flex Consulting",
                                  sku=f"FLEX_CONSULTING_{request.level.upper()}", start_date=request.at.date(),
                                  end_date=request.at.date(), quantity=Decimal("1"), unit="engagement",
                                  unit_price=amount, amount=amount))
                for position, line in enumerate(request.tax_lines):
                    s.add(InvoiceTaxLine(invoice_id=invoice.id, position=position, **line.model_dump()))
                s.add(invoice)
                return summarize(s, invoice, created=True)
        except IntegrityError:
            with self.db.session() as s:
                return summarize(s, s.exec(select(Invoice).where(Invoice.key == key)).one(), created=False)
