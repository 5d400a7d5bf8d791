"""Available Credits as the customer reads them (SPEC D3, D1, G5): active lines with their progress, upcoming lines,
the History of expired ones, whether Elastic Billing is enabled and whether it is active, and a monthly commitment's
row: the month's spending against the month's commitment, with what is banked.

Read-only, one function (`available_credits`) for the HTTP API and the pages. Table order is the draw order: a
monthly commitment's rows first (it is billed before credits are drawn), then the credit lines by position, then an
Elastic subscription, which the seeds show as infinite credit at the bottom (what is left when credits run out).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel
from sqlmodel import select

from activities.invoices import commitment_state_of
from billing.credits import CreditLineState, LineStatus, elastic_billing_active
from billing.invoicing import period_of
from billing.money import round_money
from billing.subscriptions import (CREDIT_CURRENCY, SubscriptionTerms, SubscriptionType, bill_period,
                                   commitment_credit_lines)
from store.cycle import cloud_invoice_key
from store.db import Database
from store.tables import CreditLine, Invoice, Subscription

ACTIVE = "ACTIVE"


class CreditRow(BaseModel):
    """A row of the table. `amount` and `remaining` are None for an Elastic subscription (infinite credit)."""

    kind: str  # monthly_commitment | commitment_bank | prepaid | promotional | … | elastic
    amount: Decimal | None
    used: Decimal
    remaining: Decimal | None
    progress: Decimal | None  # used / amount, 0 to 1 (the progress bar of an active line); None when infinite
    currency: str
    start: date
    end: date
    status: LineStatus  # active | upcoming | expired (History)


class CommitmentMonth(BaseModel):
    """D1/D3: this month's spending against the monthly commitment, and the bank that covers overages."""

    period: str
    currency: str  # the commitment's amounts are in the credits' currency
    month: int  # 1-based month of the term
    term_months: int
    monthly_commitment: Decimal
    usage_to_date: Decimal  # the cycle's running total (G0)
    commitment_left: Decimal  # what usage can still grow by before the month goes over its commitment
    overage: Decimal  # what usage is above the month's commitment so far
    banked: Decimal  # unused commitment of earlier months, still available for this term's overages
    # D1 applied to the usage so far; all four None when the month is not the next to bill
    billed_if_closed_today: Decimal | None
    bank_used_if_closed_today: Decimal | None  # the part of the overage the bank would cover
    banked_if_closed_today: Decimal | None  # the unused commitment the month would bank
    bank_after_if_closed_today: Decimal | None
    explanation: str | None


class AvailableCredits(BaseModel):
    as_of: date
    elastic_billing_enabled: bool  # the indicator: paying as you go is available when credits run out
    elastic_billing_active: bool  # D3: no active line has anything left, so usage is paid as it goes now
    active: list[CreditRow]
    upcoming: list[CreditRow]
    history: list[CreditRow]  # expired lines, a lapsed commitment bank included (D1: never silently dropped)
    commitment: CommitmentMonth | None


def _row(line: CreditLineState, on: date) -> CreditRow:
    def cents(amount: Decimal) -> Decimal:  # the database keeps amounts normalized ("5E+2"): show "500.00"
        return round_money(amount, line.currency)

    return CreditRow(kind=line.kind, amount=cents(line.amount), used=cents(line.used), remaining=cents(line.remaining),
                     progress=(line.used / line.amount).quantize(Decimal("0.0001")) if line.amount else Decimal(0),
                     currency=line.currency, start=line.start, end=line.end, status=line.status(on))


def _terms(sub: Subscription) -> SubscriptionTerms:
    return SubscriptionTerms(type=sub.type, term_start=sub.term_start, term_months=sub.term_months,
                             commitment=sub.commitment, currency=sub.currency)


def _commitment_month(terms: SubscriptionTerms, sub: Subscription, usage: Decimal, on: date) -> CommitmentMonth | None:
    period = period_of(on)
    index = terms.month_index(period)
    if index is None:
        return None
    state = commitment_state_of(sub)
    minimum = terms.monthly_minimums()[index]
    billed = bank_used = banked = bank_after = explanation = None
    if state.months_billed == index:  # the month the next settlement bills (not one held by a late activation)
        projected = bill_period(terms, state, usage, period)
        billed, bank_used, banked, bank_after = (round_money(amount, CREDIT_CURRENCY) for amount in (
            projected.billed_usage, projected.bank_used, projected.banked, projected.state.bank))
        explanation = projected.explanation
    return CommitmentMonth(period=period, currency=CREDIT_CURRENCY, month=index + 1, term_months=terms.term_months,
                           monthly_commitment=minimum, usage_to_date=usage,
                           commitment_left=max(minimum - usage, Decimal("0.00")),
                           overage=max(usage - minimum, Decimal("0.00")),
                           banked=round_money(state.bank, CREDIT_CURRENCY), billed_if_closed_today=billed,
                           bank_used_if_closed_today=bank_used, banked_if_closed_today=banked,
                           bank_after_if_closed_today=bank_after, explanation=explanation)


def available_credits(db: Database, org_id: str, on: date) -> AvailableCredits:
    """D3 as of `on` (the business date): the organization's credit table split into active, upcoming and History."""
    period = period_of(on)
    with db.session() as s:
        subs = list(s.exec(select(Subscription).where(Subscription.org_id == org_id, Subscription.status == ACTIVE)
                           .order_by(Subscription.term_start, Subscription.id)))
        lines = [CreditLineState(position=row.position, kind=row.kind, amount=row.amount, used=row.used,
                                 start=row.start_date, end=row.end_date, currency=row.currency)
                 for row in s.exec(select(CreditLine).where(CreditLine.org_id == org_id)
                                   .order_by(CreditLine.position))]
        cycle = s.exec(select(Invoice.usage).where(Invoice.key == cloud_invoice_key(org_id, period))).first()
        month_usage = round_money(cycle if cycle is not None else Decimal(0), CREDIT_CURRENCY)
        elastic_usage: dict[int, Decimal] = {}
        for sub in subs:
            if sub.type == SubscriptionType.ELASTIC:
                used = s.exec(select(Invoice.usage).where(Invoice.org_id == org_id, Invoice.kind == "cloud",
                                                          Invoice.period >= period_of(sub.term_start))).all()
                elastic_usage[sub.id] = round_money(sum(used, Decimal(0)), CREDIT_CURRENCY)

    rows: list[CreditRow] = []
    commitment: CommitmentMonth | None = None
    for sub in subs:
        terms = _terms(sub)
        commitment_lines = commitment_credit_lines(terms, commitment_state_of(sub))
        rows += [_row(line, on) for line in commitment_lines]
        if commitment_lines and commitment is None:
            commitment = _commitment_month(terms, sub, month_usage, on)
    rows += [_row(line, on) for line in lines]
    for sub in subs:
        if sub.type == SubscriptionType.ELASTIC:
            terms = _terms(sub)
            rows.append(CreditRow(kind="elastic", amount=None, used=elastic_usage[sub.id], remaining=None,
                                  progress=None, currency=CREDIT_CURRENCY, start=sub.term_start, end=terms.term_end(),
                                  status=CreditLineState(position=0, kind="elastic", amount=Decimal(0),
                                                         start=sub.term_start, end=terms.term_end()).status(on)))
    # Elastic Billing is enabled by an Elastic subscription, and is how an organization with no subscription pays;
    # it is active once no active credit line has anything left (D3: the two are not the same).
    enabled = not subs or any(sub.type == SubscriptionType.ELASTIC for sub in subs)
    return AvailableCredits(
        as_of=on, elastic_billing_enabled=enabled, elastic_billing_active=elastic_billing_active(lines, on),
        active=[row for row in rows if row.status == "active"],
        upcoming=[row for row in rows if row.status == "upcoming"],
        history=[row for row in rows if row.status == "expired"],
        commitment=commitment)
