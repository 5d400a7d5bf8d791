"""Support plans (SPEC B1): changes take effect on the 1st of next month; cancelling during a trial stops billing
at once; the month's charge is a share of usage with a monthly minimum, prorated by billable days."""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path

from pydantic import BaseModel

from billing.invoicing import first_day_of, last_day_of
from billing.money import round_money

PRICES = Path(__file__).parent / "data" / "support_plans.toml"


class SupportPlan(StrEnum):
    BASIC = "basic"  # free, always available
    DEVELOPER = "developer"
    PREMIUM = "premium"


class PlanPrice(BaseModel):
    rate: Decimal
    minimum: Decimal


@cache
def plan_prices() -> dict[SupportPlan, PlanPrice]:
    with PRICES.open("rb") as handle:
        data = tomllib.load(handle)
    return {SupportPlan(name): PlanPrice(**values) for name, values in data.items()}


class PlanPeriod(BaseModel):
    plan: SupportPlan
    start: date
    end: date | None = None  # exclusive
    trial_ends: date | None = None
    billing_stopped: date | None = None


class PlanChange(BaseModel):
    plan: SupportPlan
    effective: date
    billing_stopped: date | None = None


class SupportLine(BaseModel):
    plan: SupportPlan
    days: int
    amount: Decimal


def first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def change_plan(periods: list[PlanPeriod], plan: SupportPlan, on: date) -> tuple[list[PlanPeriod], PlanChange]:
    """B1: an upgrade, downgrade or cancellation takes effect on the 1st of next month; cancelling (to Basic)
    during the trial stops billing at once."""
    periods = [p.model_copy() for p in periods]
    current = periods[-1] if periods else PlanPeriod(plan=SupportPlan.BASIC, start=on)
    if not periods:
        periods.append(current)
    in_trial = current.trial_ends is not None and current.start <= on < current.trial_ends
    if plan is SupportPlan.BASIC and in_trial:
        current.end = current.billing_stopped = on
        periods.append(PlanPeriod(plan=plan, start=on))
        return periods, PlanChange(plan=plan, effective=on, billing_stopped=on)
    effective = first_of_next_month(on)
    # A change made before an earlier pending one took effect replaces it.
    while periods and periods[-1].start >= effective:
        periods.pop()
    periods[-1].end = effective
    periods.append(PlanPeriod(plan=plan, start=effective))
    return periods, PlanChange(plan=plan, effective=effective)


def support_charges(periods: list[PlanPeriod], period: str, usage: Decimal,
                    prices: dict[SupportPlan, PlanPrice] | None = None) -> list[SupportLine]:
    """The month's support lines: max(rate x usage, minimum), prorated by the days billed (not in trial, not
    after billing stopped); one rounding per line (M1)."""
    prices = prices or plan_prices()
    first = first_day_of(period)
    after = last_day_of(period) + timedelta(days=1)
    days_in_month = (after - first).days
    lines = []
    for p in periods:
        if p.plan is SupportPlan.BASIC:
            continue
        begin = max(p.start, first, p.trial_ends or p.start)
        end = min(d for d in (p.end, after, p.billing_stopped) if d is not None)
        days = (end - begin).days
        if days <= 0:
            continue
        price = prices[p.plan]
        monthly = max(price.rate * usage, price.minimum)
        lines.append(SupportLine(plan=p.plan, days=days, amount=round_money(monthly * days / days_in_month, "USD")))
    return lines
