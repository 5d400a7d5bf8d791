"""Available credits (SPEC D3): credit lines, drawing usage from them in table order, the switch to elastic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, model_validator

from billing.money import CurrencyMismatch, minor_unit, round_money

LineStatus = Literal["active", "upcoming", "expired"]


def _not_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError("money is Decimal, never float")  # SPEC M1; pydantic would convert it silently
    return value


Amount = Annotated[Decimal, BeforeValidator(_not_float)]


def require_rounded(amount: Decimal, currency: str, what: str) -> None:
    """Reject float, negative and unrounded amounts: the rules here take amounts already rounded once (SPEC M1)."""
    if isinstance(amount, float):
        raise TypeError("money is Decimal, never float")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount != round_money(amount, currency):
        raise ValueError(f"{what} must be a Decimal rounded to the {currency} minor unit, got {amount!r}")
    if amount < 0:
        raise ValueError(f"{what} must not be negative, got {amount}")


class CreditLineState(BaseModel):
    position: int
    kind: str
    amount: Amount
    used: Amount = Decimal("0.00")
    start: date
    end: date  # inclusive
    currency: str = "USD"

    @model_validator(mode="after")
    def _consistent(self) -> CreditLineState:
        minor_unit(self.currency)
        require_rounded(self.amount, self.currency, "a credit line's amount")
        require_rounded(self.used, self.currency, "a credit line's used amount")
        if self.used > self.amount:
            raise ValueError(f"credit line {self.position} has used {self.used} of only {self.amount}")
        if self.end < self.start:
            raise ValueError(f"credit line {self.position} ends ({self.end}) before it starts ({self.start})")
        return self

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.used

    def status(self, on: date) -> LineStatus:
        if on < self.start:
            return "upcoming"
        if on > self.end:
            return "expired"  # SPEC D3: moves to History
        return "active"


class CreditDraw(BaseModel):
    position: int
    kind: str
    amount: Amount


class Drawdown(BaseModel):
    draws: list[CreditDraw]
    covered: Amount
    uncovered: Amount
    lines: list[CreditLineState]
    elastic_billing_active: bool


def elastic_billing_active(lines: Sequence[CreditLineState], on: date) -> bool:
    """SPEC D3: out of credits (no active line with anything left) means paying as you go."""
    return not any(line.status(on) == "active" and line.remaining > 0 for line in lines)


def draw_credits(lines: Sequence[CreditLineState], amount: Decimal, on: date, *, currency: str = "USD") -> Drawdown:
    """Draw `amount` from the lines active on `on`, top to bottom in table order (SPEC D3), each up to its remaining."""
    require_rounded(amount, currency, "the amount to draw")
    positions = [line.position for line in lines]
    if len(set(positions)) != len(positions):
        raise ValueError(f"credit line positions must be unique to define the table order, got {positions}")
    for line in lines:
        if line.status(on) == "active" and line.currency != currency:
            raise CurrencyMismatch(f"cannot draw {currency} from credit line {line.position} in {line.currency}")

    updated = [line.model_copy() for line in lines]
    draws: list[CreditDraw] = []
    left = amount
    for i in sorted(range(len(lines)), key=lambda i: lines[i].position):
        line = lines[i]
        if left == 0:
            break
        if line.status(on) != "active" or line.remaining <= 0:
            continue
        take = min(left, line.remaining)
        updated[i] = line.model_copy(update={"used": line.used + take})
        draws.append(CreditDraw(position=line.position, kind=line.kind, amount=take))
        left -= take

    return Drawdown(
        draws=draws,
        covered=amount - left,
        uncovered=left,
        lines=updated,
        elastic_billing_active=elastic_billing_active(updated, on),
    )
