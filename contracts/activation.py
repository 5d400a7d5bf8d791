"""Contract of the activation activities: their names, inputs and results."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pydantic import BaseModel
from temporalio import activity


class IssueCodeRequest(BaseModel):
    org_id: str
    subscription_id: int
    issue: int  # 1 for the code sent at purchase, then 2, 3, ... for each re-issue through support
    grace: timedelta
    at: datetime


class IssuedCode(BaseModel):
    code_hash: str
    issue: int


class FirstUsageRequest(BaseModel):
    org_id: str
    subscription_id: int
    grace: timedelta


class GraceWindow(BaseModel):
    first_usage_on: date | None
    grace_ends_at: datetime | None


class OrgSubscription(BaseModel):
    org_id: str
    subscription_id: int
    at: datetime


class HeldInvoice(BaseModel):
    invoice_id: int
    number: str
    period: str
    amount_due: Decimal
    currency: str


class GraceOutcome(BaseModel):
    to_charge: list[HeldInvoice]  # charged to the card, non-refundable (D2)


class ActivationOutcome(BaseModel):
    to_charge: list[HeldInvoice]  # what the subscription's credits leave of months held during the grace period
    subscription_type: str


class ActivationActivities:
    """What workflows call (activities/activation.py implements it, registered under the same names)."""

    @activity.defn(name='issue_activation_code')
    async def issue_code(self, request: IssueCodeRequest) -> IssuedCode:
        """Generate a code, keep its HMAC, e-mail it to the billing recipients (A3). The code itself is written nowhere: not in the database, the outbox (masked), the logs, or the workflow's history."""

    @activity.defn(name='find_first_usage')
    def first_usage(self, request: FirstUsageRequest) -> GraceWindow:
        """SPEC D2: 30 days *of use*: the clock starts at the organization's first usage."""

    @activity.defn(name='end_activation_grace')
    def end_grace(self, request: OrgSubscription) -> GraceOutcome:
        """The code was not applied in time: months held so far are charged to the card, non-refundable."""

    @activity.defn(name='activate_subscription')
    def activate(self, request: OrgSubscription) -> ActivationOutcome:
        """The code was applied: the subscription is active, its prepaid credits join the top of the credit table (D3), and months held during the grace period are settled under it. Months already charged after the grace period stay charged: nothing is charged twice."""
