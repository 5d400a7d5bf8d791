"""Contract of the organization activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity

from billing.cards import TokenizedMethod
from billing.statuses import OrgStatus


class AttachRequest(BaseModel):
    org_id: str
    method: TokenizedMethod
    authenticate: bool
    at: datetime


class Attached(BaseModel):
    authenticated: bool


class OrgRef(BaseModel):
    org_id: str


class StatusChange(BaseModel):
    org_id: str
    status: OrgStatus
    invoices: list[str]
    at: datetime


class InvoiceNotice(BaseModel):
    """A payment workflow tells its organization's workflow that an invoice is unpaid, or paid."""

    org_id: str
    invoice: str
    paid: bool
    since: datetime | None = None  # the invoice's date, overdue counts from it (D9); filled in from the database


class OrganizationActivities:
    """What workflows call (activities/organization.py implements it, registered under the same names)."""

    @activity.defn(name='attach_payment_method')
    def attach(self, request: AttachRequest) -> Attached:
        """SPEC A4/F1: the method replaces the organization's; authenticating it is the customer's SCA step."""

    @activity.defn(name='failed_payment_invoices')
    def failed_invoices(self, request: OrgRef) -> list[str]:
        """F2: the invoices whose latest card payment failed (or is being retried right now): the database, not visibility, is the truth. A retry sent to an attempt in flight applies only if that attempt fails."""

    @activity.defn(name='set_org_status')
    async def set_status(self, request: StatusChange) -> None:
        """D9: suspended after 30 days overdue, locked after 60, active again once everything is paid."""

    @activity.defn(name='notify_org_billing')
    async def notify(self, notice: InvoiceNotice) -> None:
        """Signal-with-start: the organization's workflow exists from its first notice on."""


class OrgBillingState(BaseModel):
    status: OrgStatus = OrgStatus.ACTIVE
    unpaid: dict[str, datetime] = {}  # invoice number -> invoice date
    settled: dict[str, bool | None] = {}  # invoices retried by an update -> paid? (None: not reported yet)
    events: int = 0


class OrgBillingInput(BaseModel):
    org_id: str
    overdue_suspend: timedelta = timedelta(days=30)  # SPEC D9, H4
    overdue_lock: timedelta = timedelta(days=60)
    state: OrgBillingState | None = None  # carried over continue-as-new


class PaymentMethodUpdate(BaseModel):
    method: TokenizedMethod  # tokenized at the edge: no card number reaches the history (A6)
    authenticate: bool = False
    requested_by: str = "customer"


class PaymentMethodUpdated(BaseModel):
    authenticated: bool
    retried: list[str]  # failed payments charged again (F2)
    collected: int  # of those, how many are now PAID
    still_failed: list[str]
