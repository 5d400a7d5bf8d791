"""Contract of the payments activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from temporalio import activity

from billing.cards import TokenizedMethod
from billing.statuses import PaymentStatus


class ChargeRequest(BaseModel):
    org_id: str
    invoice_id: int
    invoice_number: str
    attempt: int  # our attempt number, never Temporal's activity attempt
    idempotency_key: str
    amount: Decimal
    currency: str
    at: datetime
    refundable: bool = True
    charge_currency: str | None = None  # India-issued cards are charged in INR (SPEC E3)
    fx_rate: Decimal | None = None  # USD -> charge currency, from the fx activity when PROCESSING begins
    on_session: bool = False  # PAY NOW: the customer is present and authenticates (SPEC G2, E2)
    method: TokenizedMethod | None = None  # the method chosen for this invoice (B3 checkout); None: the one on file


class ChargeOutcome(BaseModel):
    payment_id: int
    attempt: int
    status: PaymentStatus
    method: str
    amount: Decimal
    currency: str
    failure_code: str | None = None
    charge_id: str | None = None
    fx_rate: Decimal | None = None
    requires_authorization: bool = False


class ManualPayment(BaseModel):
    """SPEC D10: a wire transfer or ACH payment received for an invoice, recorded by its payment workflow."""

    org_id: str
    invoice_id: int
    invoice_number: str
    attempt: int
    method: str  # wire | ach
    amount: Decimal
    at: datetime
    recorded_by: str = "operator"
    reference: str | None = None  # the bank's reference, kept in the payment's history


class Forgiveness(BaseModel):
    org_id: str
    invoice_id: int
    invoice_number: str
    reason: str
    forgiven_by: str
    at: datetime


class Forgiven(BaseModel):
    amount: Decimal
    currency: str


class RefundRequest(BaseModel):
    org_id: str
    invoice_id: int
    invoice_number: str
    requested_by: str
    at: datetime


class Refunded(BaseModel):
    payments: list[ChargeOutcome]  # the REFUNDED rows, one per refunded charge


class PaymentActivities:
    """What workflows call (activities/payments.py implements it, registered under the same names)."""

    @activity.defn(name='charge_payment')
    def charge_payment(self, request: ChargeRequest) -> ChargeOutcome:
        """The charge_payment activity."""

    @activity.defn(name='record_manual_payment')
    def record_manual_payment(self, request: ManualPayment) -> ChargeOutcome:
        """SPEC D10: a wire or ACH payment received; partial payments leave the rest outstanding. Exactly once: the row's key is the invoice and our attempt number."""

    @activity.defn(name='forgive_invoice')
    def forgive_invoice(self, request: Forgiveness) -> Forgiven:
        """SPEC D10: what is outstanding is forgiven, with an audit record naming who and why."""

    @activity.defn(name='refund_payment')
    def refund_payment(self, request: RefundRequest) -> Refunded:
        """SPEC D10: refund the invoice's PAID card and PayPal charges through the gateway (one idempotency key per charge), recording each as a REFUNDED payment; D2's non-refundable charges are refused."""


class ChargeInvoiceInput(BaseModel):
    org_id: str
    invoice_id: int
    invoice_number: str
    period: str
    amount: Decimal
    currency: str
    refundable: bool = True  # SPEC D2: charges for usage after a missed activation grace period are not
    rbi_authorization_window: timedelta = timedelta(days=5)  # SPEC E4, H4
    notify_workflow_id: str | None = None  # a workflow to tell of each outcome (a Flex Consulting checkout)
    # charge: charge the method on file now (card-billed invoices). await: charge nothing; the invoice is unpaid
    # (INVOICED under a subscription, D10) until PAY NOW, a wire/ACH payment or forgiveness. serve: nothing is
    # outstanding; the run carries out the operation it was started with (a refund) and ends.
    mode: Literal["charge", "await", "serve"] = "charge"
    previous_attempts: int = 0  # attempts already made on this invoice by earlier runs: keys go on from there
    # The method the customer chose for this invoice at a Flex Consulting checkout (B3), charged instead of the one
    # on file; None (every other invoice): the organization's method on file (A4).
    method: TokenizedMethod | None = None


class PaymentNotice(BaseModel):
    invoice: str
    status: str


class RetryRequest(BaseModel):
    requested_by: str = "customer"


class PayNow(BaseModel):
    """SPEC G2/E2: the customer pays on-session with the method on file (authenticating with the issuer)."""

    requested_by: str = "customer"


class RecordPayment(BaseModel):
    """SPEC D10: a wire transfer or ACH payment received, in the invoice's currency."""

    method: Literal["wire", "ach"]
    amount: Decimal = Field(gt=0)
    recorded_by: str = "operator"
    reference: str | None = None


class Forgive(BaseModel):
    reason: str
    forgiven_by: str = "operator"

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a forgiveness needs a reason (it is audited)")
        return value.strip()


class Refund(BaseModel):
    requested_by: str = "support"


class GatewayOutcome(BaseModel):
    """A verified gateway webhook, relayed by the starter (the issuer settled a PROCESSING charge)."""

    charge_id: str
    succeeded: bool
    failure_code: str | None = None
    event_id: str


class PaymentState(BaseModel):
    invoice_number: str
    status: PaymentStatus
    attempts: int
    failure_code: str | None = None
    waiting_for: str | None = None  # what the workflow waits for, in words an operator reads
    payments: list[ChargeOutcome] = []
    outstanding: Decimal | None = None  # what is still to be paid (None: the amount being charged)
    forgiven: bool = False
