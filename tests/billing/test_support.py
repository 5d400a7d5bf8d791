"""Support plans (SPEC B1): when changes take effect and what a month of support costs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, strategies as st

from billing.support import PlanPeriod, PlanPrice, SupportPlan, change_plan, support_charges

DEV, PREMIUM, BASIC = SupportPlan.DEVELOPER, SupportPlan.PREMIUM, SupportPlan.BASIC
PRICES = {DEV: PlanPrice(rate=Decimal("0.20"), minimum=Decimal("49.00")),
          PREMIUM: PlanPrice(rate=Decimal("0.70"), minimum=Decimal("799.00"))}


def test_an_upgrade_on_the_15th_takes_effect_on_the_1st_of_next_month():
    periods, change = change_plan([PlanPeriod(plan=DEV, start=date(2027, 1, 1))], PREMIUM, date(2027, 1, 15))
    assert change.effective == date(2027, 2, 1) and change.billing_stopped is None
    assert [(p.plan, p.start, p.end) for p in periods] == [(DEV, date(2027, 1, 1), date(2027, 2, 1)),
                                                           (PREMIUM, date(2027, 2, 1), None)]
    assert [(l.plan, l.days) for l in support_charges(periods, "2027-01", Decimal("1000"), PRICES)] == [(DEV, 31)]
    assert [(l.plan, l.days) for l in support_charges(periods, "2027-02", Decimal("1000"), PRICES)] == [(PREMIUM, 28)]


def test_cancelling_during_the_trial_stops_billing_at_once():
    trial = PlanPeriod(plan=DEV, start=date(2027, 1, 1), trial_ends=date(2027, 1, 15))
    periods, change = change_plan([trial], BASIC, date(2027, 1, 10))
    assert (change.effective, change.billing_stopped) == (date(2027, 1, 10), date(2027, 1, 10))
    assert support_charges(periods, "2027-01", Decimal("1000"), PRICES) == []  # nothing billed: all trial


def test_cancelling_after_the_trial_takes_effect_next_month():
    trial = PlanPeriod(plan=DEV, start=date(2027, 1, 1), trial_ends=date(2027, 1, 15))
    periods, change = change_plan([trial], BASIC, date(2027, 1, 20))
    assert change.effective == date(2027, 2, 1) and change.billing_stopped is None
    [line] = support_charges(periods, "2027-01", Decimal("1000"), PRICES)
    assert line.days == 17  # billed from the end of the trial (15th) to the end of January


def test_the_charge_is_a_share_of_usage_with_a_monthly_minimum():
    periods = [PlanPeriod(plan=DEV, start=date(2027, 1, 1))]
    assert support_charges(periods, "2027-01", Decimal("100"), PRICES)[0].amount == Decimal("49.00")
    assert support_charges(periods, "2027-01", Decimal("1000"), PRICES)[0].amount == Decimal("200.00")


def test_a_second_change_before_the_first_takes_effect_replaces_it():
    periods, _ = change_plan([PlanPeriod(plan=DEV, start=date(2027, 1, 1))], PREMIUM, date(2027, 1, 10))
    periods, change = change_plan(periods, BASIC, date(2027, 1, 20))
    assert [(p.plan, p.start) for p in periods] == [(DEV, date(2027, 1, 1)), (BASIC, date(2027, 2, 1))]


@given(usage=st.decimals(min_value=0, max_value=1_000_000, places=2), day=st.integers(min_value=1, max_value=28))
def test_prorated_charges_never_exceed_a_full_month_and_are_rounded(usage, day):
    periods, _ = change_plan([PlanPeriod(plan=DEV, start=date(2027, 2, 1))], PREMIUM, date(2027, 2, day))
    full = max(PRICES[DEV].rate * usage, PRICES[DEV].minimum)
    [line] = support_charges(periods, "2027-02", usage, PRICES)
    assert line.amount == line.amount.quantize(Decimal("0.01")) and line.amount <= full + Decimal("0.005")


# B1 proration, each amount to the cent: a plan billed for part of the month is charged days/days-in-month of its
# monthly price (a mutant that drops the proration, or counts the wrong days, fails each of these).
def test_a_plan_starting_mid_month_is_charged_for_its_days_only():
    [line] = support_charges([PlanPeriod(plan=DEV, start=date(2027, 1, 10))], "2027-01", Decimal("1000"), PRICES)
    assert (line.days, line.amount) == (22, Decimal("141.94"))  # 200.00 x 22/31 = 141.935...


def test_a_trial_ending_mid_month_bills_from_its_end():
    trial = PlanPeriod(plan=PREMIUM, start=date(2027, 2, 1), trial_ends=date(2027, 2, 15))
    [line] = support_charges([trial], "2027-02", Decimal("100"), PRICES)
    assert (line.days, line.amount) == (14, Decimal("399.50"))  # the 799.00 minimum x 14/28


def test_billing_stopped_mid_month_charges_until_then():
    stopped = PlanPeriod(plan=DEV, start=date(2026, 12, 1), end=date(2027, 1, 12), billing_stopped=date(2027, 1, 12))
    [line] = support_charges([stopped], "2027-01", Decimal("0"), PRICES)
    assert (line.days, line.amount) == (11, Decimal("17.39"))  # the 49.00 minimum x 11/31 = 17.387...


def test_a_change_on_the_20th_splits_next_month_only():
    periods, _ = change_plan([PlanPeriod(plan=DEV, start=date(2027, 1, 1))], PREMIUM, date(2027, 1, 20))
    assert [(l.plan, l.days, l.amount) for l in support_charges(periods, "2027-01", Decimal("1000"), PRICES)] == [
        (DEV, 31, Decimal("200.00"))]
    assert [(l.plan, l.days, l.amount) for l in support_charges(periods, "2027-02", Decimal("1000"), PRICES)] == [
        (PREMIUM, 28, Decimal("799.00"))]


def test_a_first_plan_change_starts_from_basic():
    periods, change = change_plan([], DEV, date(2027, 1, 15))
    assert [(p.plan, p.start, p.end) for p in periods] == [(BASIC, date(2027, 1, 15), date(2027, 2, 1)),
                                                           (DEV, date(2027, 2, 1), None)]
    assert (change.plan, change.effective, change.billing_stopped) == (DEV, date(2027, 2, 1), None)


def test_a_change_in_december_takes_effect_in_january():
    periods, change = change_plan([PlanPeriod(plan=DEV, start=date(2026, 1, 1))], PREMIUM, date(2026, 12, 31))
    assert change.effective == date(2027, 1, 1)
    assert [(p.plan, p.start, p.end) for p in periods] == [(DEV, date(2026, 1, 1), date(2027, 1, 1)),
                                                           (PREMIUM, date(2027, 1, 1), None)]


def test_the_callers_periods_are_not_changed():
    current = PlanPeriod(plan=DEV, start=date(2027, 1, 1))
    change_plan([current], PREMIUM, date(2027, 1, 15))
    assert current.end is None


def test_the_trial_runs_from_its_first_day_to_the_day_before_it_ends():
    trial = PlanPeriod(plan=DEV, start=date(2027, 1, 10), trial_ends=date(2027, 1, 24))
    _, on_the_first_day = change_plan([trial], BASIC, date(2027, 1, 10))
    assert (on_the_first_day.effective, on_the_first_day.billing_stopped) == (date(2027, 1, 10), date(2027, 1, 10))
    _, on_the_end_day = change_plan([trial], BASIC, date(2027, 1, 24))  # the trial is over: next month
    assert (on_the_end_day.effective, on_the_end_day.billing_stopped) == (date(2027, 2, 1), None)


def test_a_paid_plan_after_basic_is_billed_and_a_single_day_counts():
    periods = [PlanPeriod(plan=BASIC, start=date(2026, 1, 1), end=date(2027, 1, 31)),
               PlanPeriod(plan=DEV, start=date(2027, 1, 31))]
    [line] = support_charges(periods, "2027-01", Decimal("0"), PRICES)
    assert (line.plan, line.days, line.amount) == (DEV, 1, Decimal("1.58"))  # 49.00 x 1/31
