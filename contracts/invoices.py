"""Contract of the invoices activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pydantic import BaseModel
from temporalio import activity
from billing.statuses import BillingMode


class TaxInvoiceSummary(BaseModel):
    invoice_id: int
    number: str
    currency: str
    total: Decimal
    amount_due: Decimal
    fx_rate: Decimal | None = None


class InvoiceSummary(BaseModel):
    invoice_id: int
    number: str
    org_id: str
    period: str
    kind: str
    status: str
    currency: str
    billed_usage: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    total: Decimal = Decimal("0")
    amount_due: Decimal = Decimal("0")
    created: bool = False  # False when the invoice already existed (a re-run settlement)
    billing_mode: str = BillingMode.CARD
    taxable: bool = True  # marketplace taxes are the cloud provider's (seed 004)
    tax_invoice_currency: str | None = None  # set when the subscription gets a tax invoice (D5)
    refundable: bool = True  # False for charges made because an activation code came too late (D2)
    tax_invoice: TaxInvoiceSummary | None = None


class SettleInvoiceRequest(BaseModel):
    org_id: str
    period: str  # YYYY-MM
    at: datetime


class InvoiceActivities:
    """What workflows call (activities/invoices.py implements it, registered under the same names)."""

    @activity.defn(name='settle_cloud_invoice')
    def settle_cloud_invoice(self, request: SettleInvoiceRequest) -> InvoiceSummary:
        """The whole month-end of one organization's cloud invoice in one transaction: close it (rate the usage, apply the subscription, D1), add the support lines (B1), tax it (C1-C4), draw the credits (D3, D6), decide its status (D8) and issue the tax invoice (D5, M2). Keyed by the invoice's business key: a retry, a second settlement or a crash after commit changes nothing, and a crash before commit leaves nothing half-written."""
