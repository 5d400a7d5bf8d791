"""One organization's month-end, computed: from its priced usage and what the database holds about it, every
figure of the cloud invoice and the tax invoice (SPEC D1-D8, B1, C4, M1-M2). Pure: the settlement activity loads
the inputs, calls `settle`, and stores the plan in one transaction.

The order is the rules' order: usage priced (M1) -> billed under the subscription (D1) -> the support line added
(B1) -> tax on the billed amount (C4) -> credits drawn top-down (D3, D6) -> status (D8) -> the tax invoice in the
subscription's currency at the period-end rate (D5, M2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.credits import CreditLineState, DatedAmount, Drawdown, date_by_usage, draw_credits
from billing.invoicing import CLOUD_CURRENCY, PricedUsage, first_day_of, last_day_of
from billing.money import round_money
from billing.subscriptions import CommitmentState, PeriodBilling, SubscriptionTerms, SubscriptionType, bill_period
from billing.support import PlanPeriod, SupportLine, support_charges
from billing.tax import TaxLine
from billing.statuses import BillingMode, InvoiceStatus

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The organization's active subscription, as settlement needs it."""

    terms: SubscriptionTerms
    state: CommitmentState


@dataclass(frozen=True, slots=True)
class TaxInvoicePlan:
    currency: str
    fx_rate: Decimal | None  # None when the tax invoice is in USD
    usage: Decimal
    billed_usage: Decimal
    tax_lines: list[TaxLine]
    tax: Decimal
    total: Decimal
    amount_due: Decimal


@dataclass(frozen=True, slots=True)
class SettlementPlan:
    usage: Decimal
    billed_usage: Decimal
    billing: PeriodBilling
    support_lines: list[SupportLine]
    tax_lines: list[TaxLine]
    tax: Decimal
    total: Decimal
    billing_mode: BillingMode
    drawdown: Drawdown | None  # None when there was nothing to draw or no credit line
    credits_applied: Decimal
    status: InvoiceStatus  # FREE | PREPAID | INVOICED | CLOSED (PAID comes later, from the payment)
    invoiced: Decimal
    amount_due: Decimal
    explanation: str | None
    tax_invoice: TaxInvoicePlan | None

    @property
    def paid(self) -> bool:
        return self.status == InvoiceStatus.PREPAID


def tax_invoice_currency(sub: Subscribed | None, period: str) -> str | None:
    """SPEC D5: a subscription in its term gets a tax invoice each month; marketplace never does."""
    if sub is None or sub.terms.type == SubscriptionType.MARKETPLACE or sub.terms.month_index(period) is None:
        return None
    return sub.terms.currency


def status_of(total: Decimal, remainder: Decimal, billing_mode: str) -> tuple[InvoiceStatus, Decimal, Decimal]:
    """D8 from what the credits left of an invoice: (status, invoiced under the subscription, due on the card).
    FREE totals nothing; PREPAID was covered by credits; INVOICED goes to the subscription's (or marketplace's)
    invoice; CLOSED waits for the card, or is held while an activation code is awaited (D2)."""
    if total == 0:
        return InvoiceStatus.FREE, ZERO, ZERO
    if remainder == 0:
        return InvoiceStatus.PREPAID, ZERO, ZERO
    if BillingMode(billing_mode).invoiced:
        return InvoiceStatus.INVOICED, remainder, ZERO
    return InvoiceStatus.CLOSED, ZERO, remainder


def billing_mode(sub: Subscribed | None, billing: PeriodBilling, activation: str | None) -> BillingMode:
    """D6: how what credits leave is settled. D2: while an activation code is awaited, card charges are held
    (`activation` "pending"), and after the grace period they are made non-refundable ("expired")."""
    if billing.invoiced_under_subscription:
        return (BillingMode.MARKETPLACE if sub is not None and sub.terms.type == SubscriptionType.MARKETPLACE
                else BillingMode.SUBSCRIPTION)
    if activation == "pending":
        return BillingMode.ACTIVATION_HOLD
    if activation == "expired":
        return BillingMode.GRACE_CHARGE
    return BillingMode.CARD


def plan_tax_invoice(currency: str, rate: Decimal, *, usage: Decimal, billed: Decimal, tax_lines: Sequence[TaxLine],
                     covered: Decimal, status: str) -> TaxInvoicePlan:
    """D5/M2: the tax invoice restating a cloud invoice in the subscription's currency at `rate` (USD -> currency),
    each line rounded once (M1); what credits covered is not due again."""

    def convert(amount: Decimal) -> Decimal:
        return round_money(amount * rate, currency)

    converted_tax = [TaxLine(name=line.name, rate=line.rate, amount=convert(line.amount)) for line in tax_lines]
    converted_billed = convert(billed)
    converted_tax_total = sum((line.amount for line in converted_tax), ZERO)
    converted_total = converted_billed + converted_tax_total
    return TaxInvoicePlan(
        currency=currency, fx_rate=None if currency == CLOUD_CURRENCY else rate, usage=convert(usage),
        billed_usage=converted_billed, tax_lines=converted_tax, tax=converted_tax_total, total=converted_total,
        amount_due=converted_total - convert(covered) if status == InvoiceStatus.INVOICED else ZERO)


def settle(*, period: str, priced: PricedUsage, sub: Subscribed | None, support: Sequence[PlanPeriod],
           tax_for: Callable[[Decimal], list[TaxLine]], activation: str | None, credits: Sequence[CreditLineState],
           fx_rate: Callable[[str], Decimal], usage_spans: Sequence[DatedAmount] = ()) -> SettlementPlan:
    """The month's invoices for one organization. `tax_for(amount)` taxes an amount at its billing address;
    `fx_rate(currency)` is the USD -> currency rate at the end of the period; `activation` is None, "pending" or
    "expired" (D2); `usage_spans` is the priced usage summed by its dates (`billing.credits.usage_by_span`), by
    which credit lines cover it (D3); without it the amount is dated over the period."""
    billing = bill_period(sub.terms if sub else None, sub.state if sub else CommitmentState(), priced.usage, period)
    mode = billing_mode(sub, billing, activation)
    support_lines = support_charges(list(support), period, priced.usage) if support else []
    support_total = sum((line.amount for line in support_lines), ZERO)
    usage, billed = priced.usage + support_total, billing.billed_usage + support_total
    tax_lines = tax_for(billed) if BillingMode(mode).taxable else []  # the marketplace taxes its own invoice (seed 004)
    tax = sum((line.amount for line in tax_lines), ZERO)
    total = billed + tax

    on = last_day_of(period)
    drawdown = None
    if credits and total != 0:
        dated = date_by_usage(total, usage_spans, first_day_of(period), on)
        drawdown = draw_credits(credits, total, on, dated=dated)
    covered = drawdown.covered if drawdown else ZERO
    status, invoiced, amount_due = status_of(total, total - covered, mode)

    currency = tax_invoice_currency(sub, period)
    tax_invoice = None
    if currency is not None:
        rate = Decimal("1") if currency == CLOUD_CURRENCY else fx_rate(currency)
        tax_invoice = plan_tax_invoice(currency, rate, usage=usage, billed=billed, tax_lines=tax_lines,
                                       covered=covered, status=status)
    return SettlementPlan(
        usage=usage, billed_usage=billed, billing=billing, support_lines=support_lines, tax_lines=tax_lines, tax=tax,
        total=total, billing_mode=mode, drawdown=drawdown, credits_applied=covered, status=status, invoiced=invoiced,
        amount_due=amount_due, explanation=billing.explanation if billing.billed_usage != priced.usage else None,
        tax_invoice=tax_invoice)
