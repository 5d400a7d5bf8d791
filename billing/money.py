"""Money as Decimal with an ISO-4217 currency, and the project's one rounding function (SPEC M1)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Overflow
from fractions import Fraction

MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "INR": 2,
    "GBP": 2,
    "JPY": 0,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "SGD": 2,
    "HKD": 2,
    "CNY": 2,
    "BRL": 2,
    "MXN": 2,
    "ZAR": 2,
    "KRW": 0,
}

# Arithmetic traps Inexact so nothing is ever rounded silently by the context's precision;
# round_money is the only place that rounds.
_EXACT = Context(prec=60, traps=[InvalidOperation, Overflow, Inexact])
_ROUNDING = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])


class UnknownCurrency(ValueError):
    """A currency code that is not in MINOR_UNITS."""


class CurrencyMismatch(ValueError):
    """An operation mixing two currencies."""


def minor_unit(currency: str) -> int:
    """Decimal places of the currency's minor unit (USD 2, JPY 0)."""
    try:
        return MINOR_UNITS[currency]
    except (KeyError, TypeError):
        raise UnknownCurrency(f"unknown currency {currency!r} (expected an upper-case ISO 4217 code)") from None


def _check_amount(amount: object) -> Decimal:
    if isinstance(amount, float):
        raise TypeError("money amounts must be Decimal, never float")
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise TypeError(f"money amounts must be Decimal or int, got {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite():
        raise ValueError(f"money amounts must be finite, got {amount}")
    return amount


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up (away from zero on a tie) to the currency's minor unit."""
    amount = _check_amount(amount)
    rounded = amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), context=_ROUNDING)
    # A negative amount that rounds to zero must not print as "-0.00".
    return rounded.copy_abs() if rounded.is_zero() else rounded


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount with exactly the currency's minor-unit places ("59.52", "100" for JPY)."""
    return f"{round_money(amount, currency):f}"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency; rounded only by `rounded()`."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _check_amount(self.amount))
        minor_unit(self.currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        if isinstance(amount, str):
            try:
                amount = Decimal(amount.strip())
            except InvalidOperation:
                raise ValueError(f"not a decimal amount: {amount!r}") from None
        return cls(amount, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0).scaleb(-minor_unit(currency)), currency)

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(_EXACT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(_EXACT.subtract(self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money(self.amount.copy_negate(), self.currency)

    def __mul__(self, factor: object) -> Money:
        if isinstance(factor, float):
            raise TypeError("cannot multiply money by a float; use Decimal")
        if isinstance(factor, bool) or not isinstance(factor, (Decimal, int)):
            return NotImplemented
        return Money(_EXACT.multiply(self.amount, Decimal(factor)), self.currency)

    __rmul__ = __mul__

    def _amounts(self, other: Money) -> tuple[Decimal, Decimal]:
        self._same_currency(other)
        return self.amount, other.amount

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        a, b = self._amounts(other)
        return a < b

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        a, b = self._amounts(other)
        return a <= b

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        a, b = self._amounts(other)
        return a > b

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        a, b = self._amounts(other)
        return a >= b

    def rounded(self) -> Money:
        return Money(round_money(self.amount, self.currency), self.currency)

    def is_zero(self) -> bool:
        return self.amount.is_zero()

    def __str__(self) -> str:
        return format_amount(self.amount, self.currency)


def sum_money(items: Iterable[Money], currency: str) -> Money:
    """Exact sum of `items`, all in `currency`; zero when empty."""
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total


def allocate(total: Money, weights: Sequence[Decimal]) -> list[Money]:
    """Split a rounded total into rounded parts proportional to `weights` that sum exactly to it.

    Largest-remainder method: every part gets the floor of its exact share in minor units, and
    the units left over go one each to the largest remainders (ties to the earlier part).
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if total.amount != round_money(total.amount, total.currency):
        raise ValueError(f"allocate needs a rounded total, got {total.amount} {total.currency}")
    shares = [Fraction(_check_amount(w)) for w in weights]
    if any(w < 0 for w in shares):
        raise ValueError("allocation weights must not be negative")
    weight_sum = sum(shares)
    if weight_sum == 0:
        raise ValueError("allocation weights must not all be zero")

    places = minor_unit(total.currency)
    units = int(total.amount.scaleb(places, context=_EXACT))
    sign, units = (-1 if units < 0 else 1), abs(units)
    exact = [units * w / weight_sum for w in shares]
    parts = [int(e) for e in exact]  # floor: every share is non-negative
    leftover = units - sum(parts)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return [Money(Decimal(sign * p).scaleb(-places, context=_EXACT), total.currency) for p in parts]
