"""The pure settlement plan (billing/settlement.py): every cent of an invoice is accounted for, whatever the
subscription, support plan, tax, credits and activation state (SPEC D1-D8, M1)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.credits import CreditLineState, DatedAmount
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


def subscribed(kind: SubscriptionType, currency: str = "EUR", state: CommitmentState | None = None,
               term_start: date = date(2027, 3, 1)) -> Subscribed:
    return Subscribed(terms=SubscriptionTerms(type=kind, term_start=term_start, term_months=12,
                                              commitment=Decimal("12000.00"), currency=currency),
                      state=state or CommitmentState())


def settle_usage(amount: str, **given) -> object:
    arguments = {"period": PERIOD, "priced": price_usage([("web", "Atlas", Decimal(amount), Decimal("1"))]),
                 "sub": None, "support": [], "tax_for": flat_tax(Decimal("0")), "activation": None, "credits": [],
                 "fx_rate": {"EUR": Decimal("0.9137")}.__getitem__}
    return settle(**(arguments | given))


def test_the_commitment_state_carried_in_is_the_one_billed_against():
    # Month 2 of the term, 300.00 banked in month 1 (D4): an overage of 200.00 is covered from the bank.
    state = CommitmentState(bank=Decimal("300.00"), banked_total=Decimal("300.00"), cumulative_usage=Decimal("700.00"),
                            cumulative_billed=Decimal("1000.00"), months_billed=1)
    plan = settle_usage("1200", sub=subscribed(SubscriptionType.MONTHLY_COMMITMENT, term_start=date(2027, 2, 1),
                                               state=state))
    assert (plan.billing.bank_used, plan.billed_usage, plan.billing.state.bank) == (
        Decimal("200.00"), Decimal("1000.00"), Decimal("100.00"))
    assert plan.explanation == plan.billing.explanation  # billed differs from usage: the invoice says why
    assert plan.explanation == ("Usage 1,200.00 above the monthly commitment 1,000.00: the 200.00 overage covered "
                                "from the bank, billed 1,000.00, 100.00 still banked")


def test_a_marketplace_subscription_is_invoiced_through_the_marketplace_untaxed():
    plan = settle_usage("600", sub=subscribed(SubscriptionType.MARKETPLACE, currency="USD"),
                        tax_for=flat_tax(Decimal("0.19")))
    assert (plan.billing_mode, plan.status, plan.tax_lines, plan.tax, plan.invoiced, plan.amount_due) == (
        "marketplace", "INVOICED", [], Decimal("0"), Decimal("600.00"), Decimal("0"))
    assert type(plan.tax) is Decimal and plan.tax_invoice is None
    assert plan.explanation is None  # billed as used: nothing to explain


def test_support_is_billed_on_the_usage_and_adds_to_the_invoice():
    support = [PlanPeriod(plan=SupportPlan.DEVELOPER, start=date(2027, 1, 1))]
    plan = settle_usage("600", support=support, tax_for=flat_tax(Decimal("0.19")))
    # B1: 20% of 600.00 = 120.00 above the 49.00 minimum, for the whole of March; taxed with the usage (C4).
    assert [(line.plan, line.days, line.amount) for line in plan.support_lines] == [("developer", 31, Decimal("120.00"))]
    assert (plan.usage, plan.billed_usage, plan.tax, plan.total, plan.amount_due) == (
        Decimal("720.00"), Decimal("720.00"), Decimal("136.80"), Decimal("856.80"), Decimal("856.80"))
    assert settle_usage("600").support_lines == []


def test_no_credit_lines_no_drawdown_and_a_total_of_one_dollar_is_drawn():
    assert settle_usage("600").drawdown is None
    credit = CreditLineState(position=0, kind="prepaid", amount=Decimal("5.00"), start=date(2027, 1, 1),
                             end=date(2027, 12, 31))
    plan = settle_usage("1", credits=[credit])
    assert (plan.status, plan.credits_applied, plan.drawdown.covered, plan.drawdown.lines[0].used) == (
        "PREPAID", Decimal("1.00"), Decimal("1.00"), Decimal("1.00"))


def test_credits_cover_the_usage_by_its_own_dates():
    # D3: the line expires on the 10th; the usage was all before it, so the line covers it although it has
    # expired by the end of the period.
    credit = CreditLineState(position=0, kind="promotional", amount=Decimal("1000.00"), start=date(2027, 1, 1),
                             end=date(2027, 3, 10))
    spans = [DatedAmount(first=date(2027, 3, 1), last=date(2027, 3, 5), amount=Decimal("600.00"))]
    plan = settle_usage("600", credits=[credit], usage_spans=spans)
    assert (plan.status, plan.credits_applied, plan.amount_due) == ("PREPAID", Decimal("600.00"), Decimal("0"))
    assert [(p.first, p.last, p.amount, p.position) for p in plan.drawdown.pieces] == [
        (date(2027, 3, 1), date(2027, 3, 5), Decimal("600.00"), 0)]
    undated = settle_usage("600", credits=[credit])  # dated over the month: 10 of its 31 days are covered
    assert (undated.status, undated.credits_applied) == ("CLOSED", Decimal("193.55"))


def test_a_usd_subscription_gets_a_usd_tax_invoice_without_a_rate_and_credits_are_not_due_again():
    credit = CreditLineState(position=0, kind="prepaid", amount=Decimal("100.00"), start=date(2027, 1, 1),
                             end=date(2027, 12, 31))
    # fx_rate knows EUR only: a USD tax invoice must not ask for a rate.
    plan = settle_usage("600", sub=subscribed(SubscriptionType.MONTHLY_COMMITMENT, currency="USD"), credits=[credit])
    tax_invoice = plan.tax_invoice
    assert (plan.status, plan.total, plan.credits_applied, plan.invoiced) == (
        "INVOICED", Decimal("1000.00"), Decimal("100.00"), Decimal("900.00"))
    assert (tax_invoice.currency, tax_invoice.fx_rate, tax_invoice.usage, tax_invoice.billed_usage,
            tax_invoice.tax_lines, tax_invoice.tax, tax_invoice.total, tax_invoice.amount_due) == (
        "USD", None, Decimal("600.00"), Decimal("1000.00"), [], Decimal("0"), Decimal("1000.00"), Decimal("900.00"))
    assert type(tax_invoice.tax) is Decimal and type(plan.tax) is Decimal


def test_a_tax_invoice_restates_the_usage_and_tax_lines_and_is_not_due_when_credits_paid_it():
    credit = CreditLineState(position=0, kind="prepaid", amount=Decimal("5000.00"), start=date(2027, 1, 1),
                             end=date(2027, 12, 31))
    plan = settle_usage("600", sub=subscribed(SubscriptionType.MONTHLY_COMMITMENT), credits=[credit],
                        tax_for=flat_tax(Decimal("0.19")))
    tax_invoice = plan.tax_invoice
    assert (plan.status, plan.credits_applied) == ("PREPAID", Decimal("1190.00"))
    assert (tax_invoice.usage, tax_invoice.billed_usage, tax_invoice.tax_lines, tax_invoice.amount_due) == (
        Decimal("548.22"), Decimal("913.70"), [TaxLine(name="VAT", rate=Decimal("0.19"), amount=Decimal("173.60"))],
        Decimal("0"))


def test_a_tax_invoice_of_a_card_paid_subscription_is_not_due_by_transfer():
    # An elastic subscription in its term gets a tax invoice (D5), but the card pays the cloud invoice (CLOSED).
    plan = settle_usage("600", sub=subscribed(SubscriptionType.ELASTIC), tax_for=flat_tax(Decimal("0.19")))
    assert (plan.billing_mode, plan.status, plan.amount_due) == ("card", "CLOSED", Decimal("714.00"))
    assert (plan.tax_invoice.total, plan.tax_invoice.amount_due) == (Decimal("652.38"), Decimal("0"))
