"""Contract of the consulting activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pydantic import BaseModel
from temporalio import activity
from contracts.invoices import InvoiceSummary
from contracts.tax import TaxQuote
from billing.tax import TaxLine


class CartRequest(BaseModel):
    amount: Decimal
    country: str
    state: str
    tax_id: str | None = None
    at: datetime


class ConsultingInvoiceRequest(BaseModel):
    org_id: str
    purchase_id: str
    level: str
    amount: Decimal
    tax_lines: list[TaxLine]
    at: datetime


class ConsultingActivities:
    """What workflows call (activities/consulting.py implements it, registered under the same names)."""

    @activity.defn(name='price_flex_consulting')
    def price(self, request: CartRequest) -> TaxQuote:
        """The cart's tax, from the address the customer gave at checkout (C3: Flex Consulting column)."""

    @activity.defn(name='issue_consulting_invoice')
    def issue_invoice(self, request: ConsultingInvoiceRequest) -> InvoiceSummary:
        """The issue_consulting_invoice activity."""
