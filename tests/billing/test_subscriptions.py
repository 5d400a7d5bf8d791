"""What each month is billed under a subscription: monthly minimum and bank, flex true-up, elastic (SPEC D1, D4)."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.subscriptions import (CommitmentState, PeriodBilling, SubscriptionTerms, SubscriptionType, bill_period,
                                   commitment_credit_lines, count_months_billed_before_activation)

D = Decimal
cents = st.integers(min_value=0, max_value=10**8).map(lambda u: D(u).scaleb(-2))


def terms(kind: SubscriptionType, commitment: str, months: int = 12, start: date = date(2024, 1, 1)):
    return SubscriptionTerms(type=kind, term_start=start, term_months=months, commitment=D(commitment))


def periods(t: SubscriptionTerms) -> list[str]:
    first = t.term_start.year * 12 + t.term_start.month - 1
    return [f"{(first + i) // 12:04d}-{(first + i) % 12 + 1:02d}" for i in range(t.term_months)]


def bill_months(t: SubscriptionTerms, usages: list[Decimal]) -> list[PeriodBilling]:
    state = CommitmentState()
    results = []
    for period, usage in zip(periods(t), usages, strict=False):
        result = bill_period(t, state, usage, period)
        results.append(result)
        state = result.state
    return results


def test_monthly_commitment_banks_unused_credit_for_later_overage():
    t = terms(SubscriptionType.MONTHLY_COMMITMENT, "12000.00")
    january, february, march = bill_months(t, [D("600.00"), D("1300.00"), D("1500.00")])

    assert (january.billed_usage, january.banked, january.state.bank) == (D("1000.00"), D("400.00"), D("400.00"))
    assert january.explanation == (
        "Usage 600.00 below the monthly commitment 1,000.00: billed the commitment, 400.00 banked"
    )
    assert (february.billed_usage, february.bank_used, february.state.bank) == (D("1000.00"), D("300.00"), D("100.00"))
    assert (march.billed_usage, march.bank_used, march.state.bank) == (D("1400.00"), D("100.00"), D("0.00"))
    assert all(r.invoiced_under_subscription for r in (january, february, march))
    assert march.state == CommitmentState(
        bank=D("0.00"), cumulative_usage=D("3400.00"), cumulative_billed=D("3400.00"), months_billed=3,
        banked_total=D("400.00"),
    )


def test_monthly_commitment_bills_usage_beyond_the_whole_commitment_on_top_of_the_minimum():
    t = terms(SubscriptionType.MONTHLY_COMMITMENT, "3000.00", months=3)
    first, second, third = bill_months(t, [D("200.00"), D("3500.00"), D("400.00")])
    assert first.billed_usage == D("1000.00") and first.state.bank == D("800.00")
    # 3,700 used of a 3,000 commitment: the bank covers 800 of the 2,500 overage, the rest is billed on top.
    assert second.billed_usage == D("2700.00") and second.bank_used == D("800.00")
    assert third.billed_usage == D("1000.00") and third.state.bank == D("600.00")
    assert third.state.cumulative_billed == D("4700.00") >= third.state.cumulative_usage == D("4100.00")


def test_flex_commitment_charges_unused_credits_in_the_last_month():
    t = terms(SubscriptionType.FLEX_COMMITMENT, "3000.00", months=3)
    results = bill_months(t, [D("500.00")] * 3)
    assert [r.billed_usage for r in results] == [D("500.00"), D("500.00"), D("2000.00")]
    assert [r.true_up for r in results] == [0, 0, D("1500.00")]
    assert all(r.invoiced_under_subscription for r in results)


def test_flex_commitment_used_in_full_has_no_true_up():
    t = terms(SubscriptionType.FLEX_COMMITMENT, "3000.00", months=3)
    results = bill_months(t, [D("1500.00"), D("1200.00"), D("900.00")])
    assert [r.billed_usage for r in results] == [D("1500.00"), D("1200.00"), D("900.00")]
    assert results[-1].true_up == 0


def test_monthly_minimums_sum_exactly_to_the_commitment():
    even = terms(SubscriptionType.MONTHLY_COMMITMENT, "12000.00").monthly_minimums()
    assert even == [D("1000.00")] * 12
    uneven = terms(SubscriptionType.MONTHLY_COMMITMENT, "10000.00").monthly_minimums()
    assert sum(uneven) == D("10000.00")
    assert set(uneven) == {D("833.33"), D("833.34")}


def test_term_months_and_end():
    t = terms(SubscriptionType.MONTHLY_COMMITMENT, "12000.00", start=date(2024, 3, 1))
    assert t.month_index("2024-03") == 0
    assert t.month_index("2025-02") == 11
    assert t.month_index("2024-02") is None and t.month_index("2025-03") is None
    assert t.is_last_month("2025-02") and not t.is_last_month("2025-01")
    assert t.term_end() == date(2025, 2, 28)
    with pytest.raises(ValueError):
        t.month_index("2024-3")


@pytest.mark.parametrize("kind", [SubscriptionType.MONTHLY_COMMITMENT, SubscriptionType.FLEX_COMMITMENT])
@pytest.mark.parametrize("period", ["2023-12", "2025-01"])
def test_periods_outside_the_term_are_elastic(kind, period):
    t = terms(kind, "12000.00")
    state = CommitmentState(
        bank=D("400.00"), cumulative_usage=D("600.00"), cumulative_billed=D("1000.00"), months_billed=1
    )
    result = bill_period(t, state, D("250.00"), period)
    assert result.billed_usage == D("250.00")
    assert not result.invoiced_under_subscription
    assert result.bank_used == 0 and result.true_up == 0
    assert result.state == state


def test_marketplace_is_invoiced_through_the_marketplace():
    result = bill_period(terms(SubscriptionType.MARKETPLACE, "0.00"), CommitmentState(), D("321.09"), "2024-05")
    assert result.billed_usage == D("321.09")
    assert result.invoiced_under_subscription


@pytest.mark.parametrize(
    "t", [None, terms(SubscriptionType.ELASTIC, "0.00"), terms(SubscriptionType.PREPAID, "5000.00")]
)
def test_elastic_prepaid_and_no_subscription_bill_usage_to_the_payment_method(t):
    result = bill_period(t, CommitmentState(), D("600.00"), "2024-05")
    assert result.billed_usage == D("600.00")
    assert not result.invoiced_under_subscription
    assert result.state.months_billed == 1 and result.state.cumulative_usage == D("600.00")


def test_refuses_a_month_billed_twice_or_skipped():
    t = terms(SubscriptionType.MONTHLY_COMMITMENT, "12000.00")
    january = bill_period(t, CommitmentState(), D("600.00"), "2024-01")
    with pytest.raises(ValueError, match="billed twice"):
        bill_period(t, january.state, D("600.00"), "2024-01")
    with pytest.raises(ValueError, match="skipped"):
        bill_period(t, january.state, D("600.00"), "2024-03")


def test_refuses_bad_terms_and_amounts():
    with pytest.raises(ValidationError):
        SubscriptionTerms(type="monthly_commitment", term_start=date(2024, 1, 2), term_months=12, commitment=D("1"))
    with pytest.raises(ValidationError):
        SubscriptionTerms(type="monthly_commitment", term_start=date(2024, 1, 1), term_months=0, commitment=D("1"))
    with pytest.raises(ValidationError):
        SubscriptionTerms(type="monthly_commitment", term_start=date(2024, 1, 1), term_months=12, commitment=D("-1"))
    with pytest.raises(ValidationError):
        SubscriptionTerms(type="flex_commitment", term_start=date(2024, 1, 1), term_months=12, commitment=1000.0)
    with pytest.raises(ValueError):
        bill_period(None, CommitmentState(), D("1.005"), "2024-01")
    with pytest.raises(TypeError):
        bill_period(None, CommitmentState(), 1.5, "2024-01")  # type: ignore[arg-type]


commitment_terms = st.builds(
    SubscriptionTerms,
    type=st.just(SubscriptionType.MONTHLY_COMMITMENT),
    term_start=st.builds(date, st.integers(2020, 2030), st.integers(1, 12), st.just(1)),
    term_months=st.integers(1, 24),
    commitment=cents,
)


@st.composite
def full_terms(draw: st.DrawFn, kind: SubscriptionType) -> tuple[SubscriptionTerms, list[Decimal]]:
    t = draw(commitment_terms).model_copy(update={"type": kind})
    return t, draw(st.lists(cents, min_size=t.term_months, max_size=t.term_months))


@given(full_terms(SubscriptionType.MONTHLY_COMMITMENT))
def test_monthly_commitment_properties(case):
    t, usages = case
    minimums = t.monthly_minimums()
    results = bill_months(t, usages)
    billed = banked = bank_used = total_usage = D(0)
    for minimum, usage, r in zip(minimums, usages, results, strict=True):
        assert r.billed_usage >= minimum and r.billed_usage >= 0
        assert r.billed_usage == max(usage, minimum) - r.bank_used
        assert r.state.bank >= 0
        assert r.bank_used <= max(usage - minimum, D(0))
        billed += r.billed_usage
        banked += r.banked
        bank_used += r.bank_used
        total_usage += usage
        # Nothing created or lost over any prefix of the term.
        assert billed == total_usage + banked - bank_used
        assert r.state.bank == banked - bank_used
        assert r.state.cumulative_billed == billed and r.state.cumulative_usage == total_usage
    assert billed == sum(minimums) + sum(max(u - m, D(0)) for u, m in zip(usages, minimums, strict=True)) - bank_used
    assert billed >= max(total_usage, t.commitment)


@given(full_terms(SubscriptionType.FLEX_COMMITMENT))
def test_flex_commitment_bills_the_greater_of_usage_and_commitment_over_the_term(case):
    t, usages = case
    results = bill_months(t, usages)
    assert sum(r.billed_usage for r in results) == max(t.commitment, sum(usages, D(0)))
    assert all(r.true_up == 0 for r in results[:-1])
    assert all(r.billed_usage >= r.usage for r in results)


def test_months_settled_before_a_late_activation_are_months_of_the_term():
    """SPEC D1 x D2: two months billed at usage while the code was awaited; the third is month 3 of 3."""
    terms = SubscriptionTerms(type=SubscriptionType.MONTHLY_COMMITMENT, term_start=date(2027, 1, 1), term_months=3,
                              commitment=Decimal("3000.00"))
    settled = {"2027-01": (Decimal("600.00"), Decimal("600.00")), "2027-02": (Decimal("1300.00"), Decimal("1300.00"))}
    state = count_months_billed_before_activation(terms, CommitmentState(), settled, "2027-02")
    assert state == CommitmentState(bank=Decimal("0.00"), cumulative_usage=Decimal("1900.00"),
                                    cumulative_billed=Decimal("1900.00"), months_billed=2)
    march = bill_period(terms, state, Decimal("1500.00"), "2027-03")
    assert march.billed_usage == Decimal("1500.00") and terms.is_last_month("2027-03")
    # Counting again changes nothing; a settlement before the term changes nothing; one after it counts the term.
    assert count_months_billed_before_activation(terms, state, settled, "2027-02") == state
    assert count_months_billed_before_activation(terms, CommitmentState(), {}, "2026-12") == CommitmentState()
    assert count_months_billed_before_activation(terms, CommitmentState(), {}, "2027-07").months_billed == 3


@pytest.mark.parametrize("kind", [k for k in SubscriptionType if k is not SubscriptionType.MONTHLY_COMMITMENT])
def test_only_a_monthly_commitment_has_rows_in_the_credits_table(kind):
    assert commitment_credit_lines(terms(kind, "1200.00"), CommitmentState()) == []


def test_a_monthly_commitment_shows_what_it_billed_and_what_it_banked():
    t = terms(SubscriptionType.MONTHLY_COMMITMENT, "1000.00", months=3, start=date(2024, 11, 1))
    state = CommitmentState(bank=D("20.00"), banked_total=D("50.00"), months_billed=2)
    commitment, bank = commitment_credit_lines(t, state)
    assert commitment.model_dump() == {
        "position": -2, "kind": "monthly_commitment", "amount": D("1000.00"), "used": D("666.67"),
        "start": date(2024, 11, 1), "end": date(2025, 1, 31), "currency": "USD"}  # minimums 333.34 + 333.33
    assert bank.model_dump() == {
        "position": -1, "kind": "commitment_bank", "amount": D("50.00"), "used": D("30.00"),
        "start": date(2024, 11, 1), "end": date(2025, 1, 31), "currency": "USD"}
    fresh = commitment_credit_lines(t, CommitmentState())
    assert [(line.used, line.amount) for line in fresh] == [(D("0"), D("1000.00")), (D("0"), D("0"))]


S, M, F = CommitmentState, SubscriptionType.MONTHLY_COMMITMENT, SubscriptionType.FLEX_COMMITMENT


@pytest.mark.parametrize("kind, commitment, months, state, usage, period, invoiced, explanation", [
    (M, "12000.00", 12, S(), "1000.00", "2024-01", True,
     "Usage 1,000.00 equal to the monthly commitment 1,000.00: billed the commitment"),
    (M, "12000.00", 12, S(), "600.00", "2024-01", True,
     "Usage 600.00 below the monthly commitment 1,000.00: billed the commitment, 400.00 banked"),
    (M, "12000.00", 12, S(), "1300.00", "2024-01", True,
     "Usage 1,300.00 above the monthly commitment 1,000.00: the 300.00 overage billed on top of the commitment, "
     "1,300.00 in all"),
    (M, "12000.00", 12, S(bank=D("500.00"), banked_total=D("500.00"), months_billed=1), "1300.00", "2024-02", True,
     "Usage 1,300.00 above the monthly commitment 1,000.00: the 300.00 overage covered from the bank, "
     "billed 1,000.00, 200.00 still banked"),
    (M, "12000.00", 12, S(bank=D("100.00"), banked_total=D("100.00"), months_billed=1), "1300.00", "2024-02", True,
     "Usage 1,300.00 above the monthly commitment 1,000.00: 100.00 of the 300.00 overage covered from the bank, "
     "billed 1,200.00"),
    (F, "1200.00", 3, S(cumulative_usage=D("100.00"), months_billed=1), "100.00", "2024-02", True,
     "Flex commitment month 2 of 3: usage 100.00 billed"),
    (F, "1200.00", 3, S(cumulative_usage=D("200.00"), months_billed=2), "100.00", "2024-03", True,
     "Flex commitment month 3 of 3: usage 100.00 plus 900.00 of unused commitment (300.00 of 1,200.00 used) "
     "billed, 1,000.00 in all"),
    (F, "1200.00", 3, S(cumulative_usage=D("1000.00"), months_billed=2), "200.00", "2024-03", True,
     "Flex commitment month 3 of 3: usage 200.00 billed, commitment 1,200.00 used in full"),
    (M, "12000.00", 12, S(), "5.00", "2025-02", False,
     "2025-02 is outside the monthly commitment term (2024-01-01 to 2024-12-31): usage 5.00 billed as it goes"),
    (SubscriptionType.ELASTIC, "0.00", 12, S(), "5.00", "2024-01", False,
     "Elastic subscription: usage 5.00 billed as it goes"),
    (SubscriptionType.PREPAID, "0.00", 12, S(), "5.00", "2024-01", False,
     "Prepaid subscription: usage 5.00 billed, paid from the prepaid credits while they last"),
])
def test_each_month_explains_what_it_billed(kind, commitment, months, state, usage, period, invoiced, explanation):
    result = bill_period(terms(kind, commitment, months), state, D(usage), period)
    assert (result.explanation, result.invoiced_under_subscription) == (explanation, invoiced)


def test_what_bill_period_refuses_says_why():
    t = terms(M, "12000.00")
    with pytest.raises(ValueError, match=r"^a period's usage must be a Decimal rounded to the USD minor unit, "
                                         r"got Decimal\('1.001'\)$"):
        bill_period(t, S(), D("1.001"), "2024-01")
    with pytest.raises(ValueError, match=r"^a billing period is 'YYYY-MM', got '2024-13'$"):
        bill_period(t, S(), D("1.00"), "2024-13")
    with pytest.raises(ValueError, match="^2024-03 is month 3 of the term but the commitment state has 1 months "
                                         "billed: a month was skipped or is being billed twice$"):
        bill_period(t, S(months_billed=1), D("1.00"), "2024-03")


def test_months_counted_before_a_late_activation_keep_the_bank():
    t = terms(M, "12000.00", start=date(2027, 1, 1))
    state = S(bank=D("400.00"), banked_total=D("400.00"), cumulative_usage=D("600.00"),
              cumulative_billed=D("1000.00"), months_billed=1)
    moved = count_months_billed_before_activation(t, state, {"2027-02": (D("50.00"), D("50.00"))}, "2027-03")
    assert moved == S(bank=D("400.00"), banked_total=D("400.00"), cumulative_usage=D("650.00"),
                      cumulative_billed=D("1050.00"), months_billed=3)


def test_a_commitment_nothing_billed_from_yet_shows_zero_in_cents():
    commitment, _ = commitment_credit_lines(terms(M, "1200.00"), S())
    assert str(commitment.used) == "0.00"
