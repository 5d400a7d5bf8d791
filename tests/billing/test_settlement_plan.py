"""The pure settlement plan (billing/settlement.py): every cent of an invoice is accounted for, whatever the
subscription, support plan, tax, credits and activation state (SPEC D1-D8, M1)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.credits import CreditLineState
from billing.invoicing import price_usage
from billing.money import round_money
from billing.settlement import Subscribed, settle
from billing.subscriptions import CommitmentState, SubscriptionTerms, SubscriptionType
from billing.support import PlanPeriod, SupportPlan
from billing.tax import TaxLine

PERIOD = "2027-03"
ON = date(2027, 3, 31)
cents = st.integers(min_value=0, max_value=10**7).map(lambda u: Decimal(u).scaleb(-2))
prices = st.integers(min_value=0, max_value=10**6).map(lambda u: Decimal(u).scaleb(-6))
quantities = st.integers(min_value=0, max_value=10**6).map(lambda u: Decimal(u).scaleb(-3))


@st.composite
def usage(draw: st.DrawFn) -> list[tuple]:
    return [(draw(st.sampled_from(["web", "etl"])), draw(st.sampled_from(["Atlas", "Backup"])), draw(quantities),
             draw(prices)) for _ in range(draw(st.integers(min_value=0, max_value=8)))]


@st.composite
def credits(draw: st.DrawFn) -> list[CreditLineState]:
    lines = []
    for position in range(draw(st.integers(min_value=0, max_value=4))):
        amount = draw(cents)
        start = ON + timedelta(days=draw(st.integers(min_value=-90, max_value=10)))
        end = start + timedelta(days=draw(st.integers(min_value=0, max_value=200)))
        lines.append(CreditLineState(position=position, kind=draw(st.sampled_from(["prepaid", "promotional"])),
                                     amount=amount, used=Decimal("0.00"), start=start, end=end))
    return lines


@st.composite
def subscriptions(draw: st.DrawFn) -> Subscribed | None:
    kind = draw(st.none() | st.sampled_from(list(SubscriptionType)))
    if kind is None:
        return None
    months = draw(st.integers(min_value=1, max_value=12))
    commitment = Decimal(draw(st.integers(min_value=1, max_value=10**6)) * months).scaleb(-2) * 100
    terms = SubscriptionTerms(type=kind, term_start=date(2027, 3, 1), term_months=months, commitment=commitment,
                              currency=draw(st.sampled_from(["USD", "EUR"])))
    return Subscribed(terms=terms, state=CommitmentState())


def flat_tax(rate: Decimal):
    return lambda amount: [TaxLine(name="VAT", rate=rate, amount=round_money(amount * rate, "USD"))] if rate else []


@settings(max_examples=300, deadline=None)
@given(usage(), subscriptions(), credits(), st.sampled_from([Decimal("0"), Decimal("0.19"), Decimal("0.2")]),
       st.sampled_from([None, "pending", "expired"]), st.booleans())
def test_every_cent_is_accounted_for(rows, sub, lines, rate, activation, developer_support):
    support = [PlanPeriod(plan=SupportPlan.DEVELOPER, start=date(2027, 1, 1))] if developer_support else []
    plan = settle(period=PERIOD, priced=price_usage(rows), sub=sub, support=support, tax_for=flat_tax(rate),
                  activation=activation, credits=lines, fx_rate=lambda currency: Decimal("0.9137"))

    assert plan.total == plan.billed_usage + plan.tax
    assert plan.tax == sum((line.amount for line in plan.tax_lines), Decimal(0))
    assert plan.billed_usage == plan.billing.billed_usage + sum((s.amount for s in plan.support_lines), Decimal(0))
    # Nothing created or lost: credits + invoiced under the subscription + due on the card = the total.
    assert plan.credits_applied + plan.invoiced + plan.amount_due == plan.total
    if plan.drawdown is not None:
        assert plan.credits_applied == plan.drawdown.covered == sum((d.amount for d in plan.drawdown.draws),
                                                                    Decimal(0))
        used = sum((line.used for line in plan.drawdown.lines), Decimal(0))
        assert used == plan.credits_applied
    assert {"FREE": plan.total == 0, "PREPAID": plan.total > 0 and plan.credits_applied == plan.total,
            "INVOICED": plan.invoiced > 0, "CLOSED": plan.amount_due > 0}[plan.status]
    assert plan.paid is (plan.status == "PREPAID")  # credits paid it all: nothing to charge or invoice
    if plan.billing_mode == "marketplace":
        assert plan.tax_lines == [] and plan.tax_invoice is None
    if sub is None or sub.terms.type == SubscriptionType.MARKETPLACE:
        assert plan.tax_invoice is None
    if activation is not None and plan.billing_mode not in ("subscription", "marketplace"):
        assert plan.billing_mode == {"pending": "activation_hold", "expired": "grace_charge"}[activation]


def test_a_eur_subscription_gets_a_tax_invoice_converted_line_by_line_at_the_period_end_rate():
    sub = Subscribed(terms=SubscriptionTerms(type=SubscriptionType.MONTHLY_COMMITMENT, term_start=date(2027, 3, 1),
                                             term_months=12, commitment=Decimal("12000.00"), currency="EUR"),
                     state=CommitmentState())
    plan = settle(period=PERIOD, priced=price_usage([("web", "Atlas", Decimal("600"), Decimal("1"))]), sub=sub,
                  support=[], tax_for=flat_tax(Decimal("0.19")), activation=None, credits=[],
                  fx_rate=lambda currency: Decimal("0.9137"))
    # Billed the monthly minimum, 1,000.00 (D1), taxed 19%; the EUR tax invoice converts each line once (M1, M2).
    assert (plan.billed_usage, plan.tax, plan.status, plan.invoiced) == (
        Decimal("1000.00"), Decimal("190.00"), "INVOICED", Decimal("1190.00"))
    tax_invoice = plan.tax_invoice
    assert (tax_invoice.currency, tax_invoice.fx_rate) == ("EUR", Decimal("0.9137"))
    assert (tax_invoice.billed_usage, tax_invoice.tax, tax_invoice.total, tax_invoice.amount_due) == (
        Decimal("913.70"), Decimal("173.60"), Decimal("1087.30"), Decimal("1087.30"))


def test_usage_covered_by_credits_is_prepaid_and_paid():
    credit = CreditLineState(position=0, kind="prepaid", amount=Decimal("1000.00"), start=date(2027, 1, 1),
                             end=date(2027, 12, 31))
    settled = {}
    for name, lines in (("prepaid", [credit]), ("card", [])):
        settled[name] = settle(period=PERIOD, priced=price_usage([("web", "Atlas", Decimal("600"), Decimal("1"))]),
                               sub=None, support=[], tax_for=flat_tax(Decimal("0")), activation=None, credits=lines,
                               fx_rate=lambda currency: Decimal("1"))
    assert (settled["prepaid"].status, settled["prepaid"].paid, settled["prepaid"].amount_due) == (
        "PREPAID", True, Decimal("0.00"))
    assert (settled["card"].status, settled["card"].paid, settled["card"].amount_due) == (
        "CLOSED", False, Decimal("600.00"))
