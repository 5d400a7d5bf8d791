"""Activation activities (SPEC D2): issue a code (e-mailed, stored as a keyed hash), find the first usage,
end the grace period, and activate the subscription."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from sqlmodel import Session, func, select
from temporalio import activity

from activities._context import activity_log_context
from activities.email import EmailActivities, EmailRequest
from activities.invoices import _apply_credits_and_status, commitment_state_of
from billing.activation import generate_code, grace_ends_at, hash_code, mask_code
from billing.db import Database
from billing.subscriptions import SubscriptionTerms, SubscriptionType, count_months_billed_before_activation
from billing.tables import (Activation, CreditLine, EmailMessage, Invoice, InvoiceLine, InvoiceStatus, Subscription,
                            UsageLine)


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


def _activation(s: Session, subscription_id: int) -> Activation:
    return s.exec(select(Activation).where(Activation.subscription_id == subscription_id)).one()


def _held(s: Session, org_id: str) -> list[Invoice]:
    return list(s.exec(select(Invoice).where(Invoice.org_id == org_id, Invoice.billing_mode == "activation_hold",
                                             Invoice.kind == "cloud").order_by(Invoice.id)))


def _count_months_settled_before(s: Session, subscription: Subscription) -> None:
    """SPEC D1 x D2: months of the term settled while the code was awaited are months of the term, so the
    commitment's state counts them before the subscription's first settlement."""
    terms = SubscriptionTerms(type=subscription.type, term_start=subscription.term_start,
                              term_months=subscription.term_months, commitment=subscription.commitment,
                              currency=subscription.currency)
    invoices = list(s.exec(select(Invoice).where(Invoice.org_id == subscription.org_id, Invoice.kind == "cloud")))
    if not invoices:
        return
    support: dict[int, Decimal] = {}
    for line in s.exec(select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]),
                                                 InvoiceLine.service == "Support")):
        support[line.invoice_id] = support.get(line.invoice_id, Decimal("0")) + line.amount
    # Usage as the commitment rule sees it: without the support line (B1), which is never billed under D1.
    settled = {i.period: (i.usage - support.get(i.id, Decimal("0")), i.billed_usage - support.get(i.id, Decimal("0")))
               for i in invoices}
    state = count_months_billed_before_activation(terms, commitment_state_of(subscription), settled, max(settled))
    subscription.bank, subscription.cumulative_usage = state.bank, state.cumulative_usage
    subscription.cumulative_billed, subscription.months_billed = state.cumulative_billed, state.months_billed
    if state.months_billed:
        subscription.last_period = terms.period_of_month(state.months_billed - 1)


def _held_summary(invoice: Invoice) -> HeldInvoice:
    return HeldInvoice(invoice_id=invoice.id, number=invoice.number, period=invoice.period,
                       amount_due=invoice.amount_due, currency=invoice.currency)


class ActivationActivities:
    def __init__(self, db: Database, email: EmailActivities) -> None:
        self.db = db
        self.email = email

    @activity.defn(name="issue_activation_code")
    async def issue_code(self, request: IssueCodeRequest) -> IssuedCode:
        """Generate a code, keep its HMAC, e-mail it to the billing recipients (A3). The code itself is
        written nowhere: not in the database, the outbox (masked), the logs, or the workflow's history."""
        with activity_log_context(org_id=request.org_id, subscription_id=request.subscription_id) as log:
            key = f"activation_code:{request.subscription_id}:{request.issue}"
            existing = self._issued(request, key)
            if existing is not None:
                return existing
            code = generate_code()
            code_hash = hash_code(code)
            subscription_type = self._store_hash(request, code_hash)
            data = {"subscription": subscription_type.replace("_", " "), "code": mask_code(code),
                    "grace_days": str(request.grace.days)}
            await self.email.deliver(EmailRequest(key=key, org_id=request.org_id, kind="activation_code", data=data,
                                                  at=request.at), secret_data={"code": code})
            log.info("activation code issued", issue=request.issue)
            return IssuedCode(code_hash=code_hash, issue=request.issue)

    def _issued(self, request: IssueCodeRequest, key: str) -> IssuedCode | None:
        """A retried activity whose e-mail already went out answers with the code it sent."""
        with self.db.session() as s:
            activation = s.exec(select(Activation).where(Activation.subscription_id == request.subscription_id)).first()
            sent = s.exec(select(EmailMessage).where(EmailMessage.key == key,
                                                     EmailMessage.delivered_at.is_not(None))).first()
        if activation is not None and activation.issued == request.issue and sent is not None:
            return IssuedCode(code_hash=activation.code_hash, issue=request.issue)
        return None

    def _store_hash(self, request: IssueCodeRequest, code_hash: str) -> str:
        with self.db.session() as s:
            activation = s.exec(select(Activation).where(Activation.subscription_id == request.subscription_id)).first()
            if activation is None:
                activation = Activation(org_id=request.org_id, subscription_id=request.subscription_id,
                                        created_at=request.at)
            activation.code_hash, activation.issued = code_hash, request.issue  # the old code stops working
            s.add(activation)
            return s.get(Subscription, request.subscription_id).type

    @activity.defn(name="find_first_usage")
    def first_usage(self, request: FirstUsageRequest) -> GraceWindow:
        """SPEC D2: 30 days *of use*: the clock starts at the organization's first usage."""
        with self.db.session() as s:
            activation = _activation(s, request.subscription_id)
            if activation.first_usage_on is None:
                first = s.exec(select(func.min(UsageLine.start_date)).where(UsageLine.org_id == request.org_id)).one()
                if first is not None:
                    activation.first_usage_on = first
                    activation.grace_ends_at = grace_ends_at(first, request.grace)
                    s.add(activation)
            return GraceWindow(first_usage_on=activation.first_usage_on, grace_ends_at=activation.grace_ends_at)

    @activity.defn(name="end_activation_grace")
    def end_grace(self, request: OrgSubscription) -> GraceOutcome:
        """The code was not applied in time: months held so far are charged to the card, non-refundable."""
        with activity_log_context(org_id=request.org_id) as log, self.db.session() as s:
            activation = _activation(s, request.subscription_id)
            activation.grace_expired = True
            s.add(activation)
            held = _held(s, request.org_id)
            for invoice in held:
                invoice.billing_mode = "grace_charge"
                s.add(invoice)
            log.info("activation grace period ended without a code", invoices=[i.number for i in held])
            return GraceOutcome(to_charge=[_held_summary(i) for i in held if i.amount_due > 0])

    @activity.defn(name="activate_subscription")
    def activate(self, request: OrgSubscription) -> ActivationOutcome:
        """The code was applied: the subscription is active, its prepaid credits join the top of the credit
        table (D3), and months held during the grace period are settled under it. Months already charged
        after the grace period stay charged: nothing is charged twice."""
        with activity_log_context(org_id=request.org_id) as log, self.db.session() as s:
            activation = _activation(s, request.subscription_id)
            subscription = s.get(Subscription, request.subscription_id)
            if activation.status == "APPLIED":
                return ActivationOutcome(to_charge=[], subscription_type=subscription.type)
            activation.status, activation.applied_at = "APPLIED", request.at
            subscription.status = "ACTIVE"
            _count_months_settled_before(s, subscription)
            s.add(activation)
            s.add(subscription)
            if subscription.type == SubscriptionType.PREPAID:
                terms = SubscriptionTerms(type=subscription.type, term_start=subscription.term_start,
                                          term_months=subscription.term_months, commitment=subscription.commitment,
                                          currency=subscription.currency)
                for line in s.exec(select(CreditLine).where(CreditLine.org_id == request.org_id)):
                    line.position += 1
                    s.add(line)
                s.add(CreditLine(org_id=request.org_id, position=0, kind="prepaid", amount=subscription.commitment,
                                 start_date=subscription.term_start, end_date=terms.term_end()))
                s.flush()
            mode = {SubscriptionType.MONTHLY_COMMITMENT: "subscription", SubscriptionType.FLEX_COMMITMENT: "subscription",
                    SubscriptionType.MARKETPLACE: "marketplace"}.get(SubscriptionType(subscription.type), "card")
            to_charge = []
            for invoice in _held(s, request.org_id):
                invoice.billing_mode = mode
                _apply_credits_and_status(s, invoice, request.at, amount=invoice.amount_due, key="credits:activation")
                s.add(invoice)
                if invoice.status == InvoiceStatus.CLOSED and invoice.amount_due > 0:
                    to_charge.append(_held_summary(invoice))
            log.info("subscription activated", subscription=subscription.type,
                     card_charges=[i.number for i in to_charge])
            return ActivationOutcome(to_charge=to_charge, subscription_type=subscription.type)
