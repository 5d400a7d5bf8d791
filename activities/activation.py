"""Activation activities (SPEC D2): issue a code (e-mailed, stored as a keyed hash), find the first usage,
end the grace period, and activate the subscription."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, func, select
from temporalio import activity

from activities._context import activity_log_context
from activities.email import EmailActivities, EmailRequest
from activities.fx import FxRequest, rate_in_force
from activities.invoices import _apply_credits_and_status, commitment_state_of, issue_tax_invoice
from activities.tax import TaxActivities, TaxRequest
from billing.activation import generate_code, grace_ends_at, hash_code, mask_code
from store.db import Database
from billing.invoicing import CLOUD_CURRENCY, last_day_of, period_end
from billing.subscriptions import (CommitmentState, SubscriptionTerms, SubscriptionType, bill_period,
                                   count_months_billed_before_activation)
from store.tables import (Activation, CreditLine, EmailMessage, Invoice, InvoiceLine, InvoiceStatus, InvoiceTaxLine,
                            Subscription, UsageLine)
from billing.tax import Product, TaxLine
from contracts.activation import IssueCodeRequest, IssuedCode, FirstUsageRequest, GraceWindow, OrgSubscription, HeldInvoice, GraceOutcome, ActivationOutcome  # noqa: F401
from billing.statuses import BillingMode


def _activation(s: Session, subscription_id: int) -> Activation:
    return s.exec(select(Activation).where(Activation.subscription_id == subscription_id)).one()


def _held(s: Session, org_id: str) -> list[Invoice]:
    return list(s.exec(select(Invoice).where(Invoice.org_id == org_id, Invoice.billing_mode == BillingMode.ACTIVATION_HOLD,
                                             Invoice.kind == "cloud").order_by(Invoice.id)))


def _held_summary(invoice: Invoice) -> HeldInvoice:
    return HeldInvoice(invoice_id=invoice.id, number=invoice.number, period=invoice.period,
                       amount_due=invoice.amount_due, currency=invoice.currency)


_COMMITMENTS = (SubscriptionType.MONTHLY_COMMITMENT, SubscriptionType.FLEX_COMMITMENT)


class ActivationActivities:
    def __init__(self, db: Database, email: EmailActivities, tax: TaxActivities | None = None) -> None:
        self.db = db
        self.email = email
        self.tax = tax or TaxActivities(db)

    def _settle_term_months_before(self, s: Session, subscription: Subscription, at: datetime) -> None:
        """SPEC D1 x D2: the term's months count from the term start whatever happened while the code was awaited.
        A commitment's month held during the grace period is billed under the commitment now, as its settlement
        would have billed it had the code been applied (D1: the greater of usage or the minimum, the bank; D5: its
        tax invoice); a month charged at usage after a missed grace period stays charged (non-refundable, D2) and
        is a month of the term all the same. The commitment's state moves in the same transaction."""
        terms = SubscriptionTerms(type=subscription.type, term_start=subscription.term_start,
                                  term_months=subscription.term_months, commitment=subscription.commitment,
                                  currency=subscription.currency)
        invoices = sorted(s.exec(select(Invoice).where(Invoice.org_id == subscription.org_id, Invoice.kind == "cloud",
                                                       Invoice.status != InvoiceStatus.PENDING)),  # G0: not settled
                          key=lambda i: (i.period, i.id))
        if not invoices:
            return
        support: dict[int, Decimal] = {}
        for line in s.exec(select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]),
                                                     InvoiceLine.service == "Support")):
            support[line.invoice_id] = support.get(line.invoice_id, Decimal("0")) + line.amount
        state = commitment_state_of(subscription)
        for invoice in invoices:
            index = terms.month_index(invoice.period)
            if index is None or index < state.months_billed:
                continue
            # A month without an invoice before this one counts as a month without usage.
            state = count_months_billed_before_activation(terms, state, {}, terms.period_of_month(index - 1))
            extra = support.get(invoice.id, Decimal("0"))  # the support line (B1) is never billed under D1
            usage = invoice.usage - extra
            if terms.type in _COMMITMENTS and invoice.billing_mode == BillingMode.ACTIVATION_HOLD:
                state = self._bill_held_month(s, invoice, terms, state, usage, extra, at)
            else:
                state = count_months_billed_before_activation(
                    terms, state, {invoice.period: (usage, invoice.billed_usage - extra)}, invoice.period)
        state = count_months_billed_before_activation(terms, state, {}, invoices[-1].period)
        subscription.bank, subscription.cumulative_usage = state.bank, state.cumulative_usage
        subscription.cumulative_billed, subscription.months_billed = state.cumulative_billed, state.months_billed
        subscription.banked_total = state.banked_total
        if state.months_billed:
            subscription.last_period = terms.period_of_month(state.months_billed - 1)

    def _bill_held_month(self, s: Session, invoice: Invoice, terms: SubscriptionTerms, state: CommitmentState,
                         usage: Decimal, support: Decimal, at: datetime) -> CommitmentState:
        """A held month re-settled under the commitment: billed usage, tax on it, credits on what is new, status
        and the tax invoice, as month-end settlement computes them (billing.settlement)."""
        billing = bill_period(terms, state, usage, invoice.period)
        billed = billing.billed_usage + support
        tax_rows = list(s.exec(select(InvoiceTaxLine).where(InvoiceTaxLine.invoice_id == invoice.id)
                               .order_by(InvoiceTaxLine.position)))
        tax_lines = [TaxLine(name=row.name, rate=row.rate, amount=row.amount) for row in tax_rows]
        if billed != invoice.billed_usage:
            tax_lines = self.tax.quote_in(s, TaxRequest(org_id=invoice.org_id, product=Product.ATLAS, amount=billed,
                                                        currency=invoice.currency,
                                                        on=last_day_of(invoice.period))).lines
            for row in tax_rows:
                s.delete(row)
            for position, line in enumerate(tax_lines):
                s.add(InvoiceTaxLine(invoice_id=invoice.id, position=position, **line.model_dump()))
            invoice.billed_usage = billed
            invoice.tax = sum((line.amount for line in tax_lines), Decimal("0"))
            invoice.total = billed + invoice.tax
            invoice.explanation = billing.explanation
        invoice.billing_mode = BillingMode.SUBSCRIPTION
        _apply_credits_and_status(s, invoice, at, amount=invoice.total - invoice.credits_applied,
                                  key="credits:activation")
        s.add(invoice)
        s.flush()
        currency = terms.currency
        fx_rate = None
        if currency != CLOUD_CURRENCY:
            fx_rate = rate_in_force(s, FxRequest(currency=currency, at=period_end(invoice.period))).rate
        issue_tax_invoice(s, invoice, tax_lines, fx_rate, currency, at)
        return billing.state

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
                invoice.billing_mode = BillingMode.GRACE_CHARGE
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
            self._settle_term_months_before(s, subscription, request.at)
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
            mode = {SubscriptionType.MONTHLY_COMMITMENT: BillingMode.SUBSCRIPTION,
                    SubscriptionType.FLEX_COMMITMENT: BillingMode.SUBSCRIPTION,
                    SubscriptionType.MARKETPLACE: BillingMode.MARKETPLACE}.get(SubscriptionType(subscription.type),
                                                                              BillingMode.CARD)
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
