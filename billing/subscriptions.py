"""Subscription terms and what each month is billed under them (SPEC D1, D4, D6): commitments, bank and true-up."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from billing.credits import Amount, CreditLineState, require_rounded
from billing.invoicing import last_day_of, period_of
from billing.money import Money, allocate, round_money

# Commitments are credits in USD, like the cloud invoice they are drawn by (SPEC M2); `currency` is the tax invoice's.
CREDIT_CURRENCY = "USD"
_ZERO = Decimal("0.00")
_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class SubscriptionType(StrEnum):
    ELASTIC = "elastic"
    FLEX_COMMITMENT = "flex_commitment"
    MONTHLY_COMMITMENT = "monthly_commitment"
    MARKETPLACE = "marketplace"
    PREPAID = "prepaid"


def _month_number(period: str) -> int:
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise ValueError(f"a billing period is 'YYYY-MM', got {period!r}")
    return int(match[1]) * 12 + int(match[2]) - 1


def _usd(amount: Decimal) -> str:
    return f"{round_money(amount, CREDIT_CURRENCY):,f}"


class SubscriptionTerms(BaseModel):
    type: SubscriptionType
    term_start: date
    term_months: int = Field(ge=1)
    commitment: Amount = Field(ge=0)
    currency: Literal["USD", "EUR"] = "USD"

    @field_validator("term_start")
    @classmethod
    def _first_of_month(cls, term_start: date) -> date:
        if term_start.day != 1:
            raise ValueError(f"a term starts on the first day of a month, got {term_start}")
        return term_start

    @field_validator("commitment")
    @classmethod
    def _rounded(cls, commitment: Decimal) -> Decimal:
        require_rounded(commitment, CREDIT_CURRENCY, "the commitment")
        return commitment

    def month_index(self, period: str) -> int | None:
        index = _month_number(period) - _month_number(period_of(self.term_start))
        return index if 0 <= index < self.term_months else None

    def period_of_month(self, index: int) -> str:
        number = _month_number(period_of(self.term_start)) + index
        return f"{number // 12:04d}-{number % 12 + 1:02d}"

    def is_last_month(self, period: str) -> bool:
        return self.month_index(period) == self.term_months - 1

    def term_end(self) -> date:
        last = _month_number(period_of(self.term_start)) + self.term_months - 1
        return last_day_of(f"{last // 12:04d}-{last % 12 + 1:02d}")

    def monthly_minimums(self) -> list[Decimal]:
        """SPEC D1: commitment ÷ months of the term, in cents that add up to the commitment exactly."""
        parts = allocate(Money(self.commitment, CREDIT_CURRENCY), [Decimal(1)] * self.term_months)
        return [part.amount for part in parts]


class CommitmentState(BaseModel):
    bank: Amount = Field(default=_ZERO, ge=0)  # unused monthly commitment, kept for later overages
    cumulative_usage: Amount = Field(default=_ZERO, ge=0)
    cumulative_billed: Amount = Field(default=_ZERO, ge=0)
    months_billed: int = Field(default=0, ge=0)
    banked_total: Amount = Field(default=_ZERO, ge=0)  # all the term has banked; `bank` is what is left of it


class PeriodBilling(BaseModel):
    usage: Amount
    billed_usage: Amount
    banked: Amount
    bank_used: Amount
    true_up: Amount
    invoiced_under_subscription: bool
    state: CommitmentState
    explanation: str


def _billing(
    state: CommitmentState,
    usage: Decimal,
    billed: Decimal,
    explanation: str,
    *,
    invoiced: bool,
    banked: Decimal = _ZERO,
    bank_used: Decimal = _ZERO,
    true_up: Decimal = _ZERO,
    accumulate: bool = True,
) -> PeriodBilling:
    new_state = state.model_copy()
    if accumulate:
        new_state = CommitmentState(
            bank=state.bank + banked - bank_used,
            cumulative_usage=state.cumulative_usage + usage,
            cumulative_billed=state.cumulative_billed + billed,
            months_billed=state.months_billed + 1,
            banked_total=state.banked_total + banked,
        )
    return PeriodBilling(
        usage=usage,
        billed_usage=billed,
        banked=banked,
        bank_used=bank_used,
        true_up=true_up,
        invoiced_under_subscription=invoiced,
        state=new_state,
        explanation=explanation,
    )


def _monthly_commitment(terms: SubscriptionTerms, state: CommitmentState, usage: Decimal, index: int) -> PeriodBilling:
    # SPEC D1/D4: the greater of usage or the monthly minimum; unused minimum is banked and covers later overages only.
    minimum = terms.monthly_minimums()[index]
    commitment = f"the monthly commitment {_usd(minimum)}"
    if usage < minimum:
        banked = minimum - usage
        text = f"Usage {_usd(usage)} below {commitment}: billed the commitment, {_usd(banked)} banked"
        return _billing(state, usage, minimum, text, invoiced=True, banked=banked)
    if usage == minimum:
        text = f"Usage {_usd(usage)} equal to {commitment}: billed the commitment"
        return _billing(state, usage, minimum, text, invoiced=True)

    overage = usage - minimum
    bank_used = min(overage, state.bank)
    billed = usage - bank_used
    head = f"Usage {_usd(usage)} above {commitment}"
    if bank_used == 0:
        text = f"{head}: the {_usd(overage)} overage billed on top of the commitment, {_usd(billed)} in all"
    elif bank_used == overage:
        left = _usd(state.bank - bank_used)
        text = f"{head}: the {_usd(overage)} overage covered from the bank, billed {_usd(billed)}, {left} still banked"
    else:
        text = f"{head}: {_usd(bank_used)} of the {_usd(overage)} overage covered from the bank, billed {_usd(billed)}"
    return _billing(state, usage, billed, text, invoiced=True, bank_used=bank_used)


def _flex_commitment(terms: SubscriptionTerms, state: CommitmentState, usage: Decimal, index: int) -> PeriodBilling:
    month = f"month {index + 1} of {terms.term_months}"
    if index < terms.term_months - 1:
        text = f"Flex commitment {month}: usage {_usd(usage)} billed"
        return _billing(state, usage, usage, text, invoiced=True)
    # SPEC D1: unused credits are charged in the last month of the term.
    used = state.cumulative_usage + usage
    true_up = max(_ZERO, terms.commitment - used)
    if true_up == 0:
        text = f"Flex commitment {month}: usage {_usd(usage)} billed, commitment {_usd(terms.commitment)} used in full"
    else:
        text = (
            f"Flex commitment {month}: usage {_usd(usage)} plus {_usd(true_up)} of unused commitment "
            f"({_usd(used)} of {_usd(terms.commitment)} used) billed, {_usd(usage + true_up)} in all"
        )
    return _billing(state, usage, usage + true_up, text, invoiced=True, true_up=true_up)


def bill_period(terms: SubscriptionTerms | None, state: CommitmentState, usage: Decimal, period: str) -> PeriodBilling:
    """What one month's usage is billed under the subscription, and the commitment state after it."""
    require_rounded(usage, CREDIT_CURRENCY, "a period's usage")
    _month_number(period)
    if terms is None:
        return _billing(state, usage, usage, f"No subscription: usage {_usd(usage)} billed as it goes", invoiced=False)

    index = terms.month_index(period)
    if index is None:
        text = (
            f"{period} is outside the {terms.type.value.replace('_', ' ')} term "
            f"({terms.term_start} to {terms.term_end()}): usage {_usd(usage)} billed as it goes"
        )
        return _billing(state, usage, usage, text, invoiced=False, accumulate=False)

    if terms.type in (SubscriptionType.MONTHLY_COMMITMENT, SubscriptionType.FLEX_COMMITMENT):
        if state.months_billed != index:
            raise ValueError(
                f"{period} is month {index + 1} of the term but the commitment state has {state.months_billed} "
                "months billed: a month was skipped or is being billed twice"
            )
        if terms.type is SubscriptionType.MONTHLY_COMMITMENT:
            return _monthly_commitment(terms, state, usage, index)
        return _flex_commitment(terms, state, usage, index)
    if terms.type is SubscriptionType.MARKETPLACE:
        text = f"Marketplace subscription: usage {_usd(usage)} invoiced through the marketplace"
        return _billing(state, usage, usage, text, invoiced=True)
    if terms.type is SubscriptionType.PREPAID:
        text = f"Prepaid subscription: usage {_usd(usage)} billed, paid from the prepaid credits while they last"
        return _billing(state, usage, usage, text, invoiced=False)
    return _billing(state, usage, usage, f"Elastic subscription: usage {_usd(usage)} billed as it goes", invoiced=False)


def count_months_billed_before_activation(terms: SubscriptionTerms, state: CommitmentState,
                                          settled: Mapping[str, tuple[Decimal, Decimal]],
                                          through: str) -> CommitmentState:
    """SPEC D1 x D2: the term's months count from the term start even when the activation code came late. Each
    month of the term settled through `through` while the code was awaited (held, or charged after a missed grace
    period) was billed at usage: it is a month of the term all the same, banked nothing and used no bank, and its
    usage counts toward the commitment. `settled` maps a period to its (usage, billed usage); a month of the term
    without an invoice counts as a month without usage."""
    last = terms.month_index(through)
    if last is None:
        if _month_number(through) < _month_number(period_of(terms.term_start)):
            return state
        last = terms.term_months - 1  # the whole term was settled before the code was applied
    moved = state
    for index in range(state.months_billed, last + 1):
        usage, billed = settled.get(terms.period_of_month(index), (_ZERO, _ZERO))
        moved = CommitmentState(bank=moved.bank, cumulative_usage=moved.cumulative_usage + usage,
                                cumulative_billed=moved.cumulative_billed + billed, months_billed=index + 1,
                                banked_total=moved.banked_total)
    return moved


def commitment_credit_lines(terms: SubscriptionTerms, state: CommitmentState) -> list[CreditLineState]:
    """SPEC D3: a monthly commitment's rows of the Available Credits table, above the credit lines (the commitment
    is billed before credits are drawn). `monthly_commitment`: the term's commitment, used by the monthly minimums
    billed so far. `commitment_bank`: all the term banked, used by overages it covered; what it still holds when
    the term ends lapses (D1), so the row's status is `expired` from the day after the term with that remainder
    shown, never silently dropped. Positions below the credit lines' (0, 1, ...) keep the table order."""
    if terms.type is not SubscriptionType.MONTHLY_COMMITMENT:
        return []
    billed = sum(terms.monthly_minimums()[:state.months_billed], _ZERO)
    end = terms.term_end()
    return [
        CreditLineState(position=-2, kind="monthly_commitment", amount=terms.commitment, used=billed,
                        start=terms.term_start, end=end, currency=CREDIT_CURRENCY),
        CreditLineState(position=-1, kind="commitment_bank", amount=state.banked_total,
                        used=state.banked_total - state.bank, start=terms.term_start, end=end,
                        currency=CREDIT_CURRENCY),
    ]
