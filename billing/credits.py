"""Available credits (SPEC D3): credit lines, drawing usage from them in table order, the switch to elastic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from operator import itemgetter
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, model_validator

from billing.money import CurrencyMismatch, Money, allocate, minor_unit, round_money

LineStatus = Literal["active", "upcoming", "expired"]
_DAY = timedelta(days=1)


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


class DatedAmount(BaseModel):
    """An amount spread evenly over the days `first` to `last`, both inclusive."""

    first: date
    last: date
    amount: Amount

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


class DatedDraw(DatedAmount):
    position: int | None  # the credit line that covered it; None: left for the card or the subscription (D6)


def usage_days(start: date, end: date) -> tuple[date, date]:
    """The days a usage line covers, both inclusive. Its `to` date is exclusive, as a usage record's period is
    (from 2027-01-01 to 2027-02-01 is the 31 days of January); a line whose `to` is its `from` covers that day."""
    return start, (end - _DAY if end > start else start)


def usage_by_span(rows: Sequence[Sequence], amounts: Sequence[Decimal], total: Decimal, *, start: int = 0,
                  end: int = 1) -> list[DatedAmount]:
    """Usage amounts summed by (from, to), the dates in columns `start` and `end` of `rows` (`amounts[i]` is row
    i's): a month's million lines share a handful of spans, so the draw by date (D3) works on those few sums, never
    on the lines. `total` is Σ amounts, which the common case of a single span reuses."""
    starts, ends = set(map(itemgetter(start), rows)), set(map(itemgetter(end), rows))
    if len(starts) == 1 and len(ends) == 1:
        [first], [to] = starts, ends
        return [DatedAmount(first=first, last=usage_days(first, to)[1], amount=total)]
    sums: dict[tuple[date, date], Decimal] = {}
    get = sums.get
    for span, amount in zip(map(itemgetter(start, end), rows), amounts):
        sums[span] = get(span, Decimal(0)) + amount
    return [DatedAmount(first=first, last=usage_days(first, to)[1], amount=amount)
            for (first, to), amount in sorted(sums.items())]


def date_by_usage(total: Decimal, usage: Sequence[DatedAmount], first: date, last: date,
                  currency: str = "USD") -> list[DatedAmount]:
    """SPEC D3: what an invoice bills, dated like the usage it bills: each usage span carries its share of the total
    (of the tax, and of any minimum or support charge billed beyond usage), in proportion to its amount and
    allocated so that the cents add up. Without usage, the amount is dated over the period `first`..`last`."""
    weighted = [span for span in usage if span.amount > 0]
    if not weighted:
        return [DatedAmount(first=first, last=last, amount=total)]
    if len(weighted) == 1:
        return [weighted[0].model_copy(update={"amount": total})]
    parts = allocate(Money(total, currency), [span.amount for span in weighted])
    return [span.model_copy(update={"amount": part.amount}) for span, part in zip(weighted, parts)]


def _split_at(spans: Sequence[DatedAmount], cuts: Sequence[date], currency: str) -> list[DatedAmount]:
    """Each span cut at the dates in `cuts` (a piece starts at a cut), pro rata by days, cents adding up."""
    pieces: list[DatedAmount] = []
    for span in spans:
        inside = [cut for cut in cuts if span.first < cut <= span.last]
        if not inside:
            pieces.append(span)
            continue
        starts = [span.first, *inside]
        ends = [cut - _DAY for cut in inside] + [span.last]
        days = [Decimal((end - start).days + 1) for start, end in zip(starts, ends)]
        shares = allocate(Money(span.amount, currency), days)
        pieces += [DatedAmount(first=start, last=end, amount=share.amount)
                   for start, end, share in zip(starts, ends, shares)]
    return pieces


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
    pieces: list[DatedDraw] = []  # the amount by dates, and which line covered each piece (None: left due)


def elastic_billing_active(lines: Sequence[CreditLineState], on: date) -> bool:
    """SPEC D3: out of credits (no active line with anything left) means paying as you go."""
    return not any(line.status(on) == "active" and line.remaining > 0 for line in lines)


def draw_credits(lines: Sequence[CreditLineState], amount: Decimal, on: date, *, currency: str = "USD",
                 dated: Sequence[DatedAmount] | None = None) -> Drawdown:
    """SPEC D3: draw `amount` from the credit lines, top to bottom in table order, each up to its remaining and
    only for the part of `amount` dated inside its validity (start to end, both inclusive). `dated` spreads
    `amount` over its days (see `date_by_usage`); a span that straddles a line's start or end counts pro rata by
    days. Without it, `amount` is dated on `on`. `on` also decides the table's state (elastic billing, D3)."""
    require_rounded(amount, currency, "the amount to draw")
    positions = [line.position for line in lines]
    if len(set(positions)) != len(positions):
        raise ValueError(f"credit line positions must be unique to define the table order, got {positions}")
    spans = list(dated) if dated is not None else [DatedAmount(first=on, last=on, amount=amount)]
    if sum((span.amount for span in spans), Decimal(0)) != amount:
        raise ValueError(f"the dated amounts must add up to the amount to draw, {amount}")
    first = min((span.first for span in spans), default=on)
    last = max((span.last for span in spans), default=on)
    for line in lines:
        if line.start <= last and first <= line.end and line.currency != currency:
            raise CurrencyMismatch(f"cannot draw {currency} from credit line {line.position} in {line.currency}")

    cuts = sorted({line.start for line in lines} | {line.end + _DAY for line in lines})
    pieces = sorted(_split_at(spans, cuts, currency), key=lambda piece: piece.first)
    left = [piece.amount for piece in pieces]
    covered_by: list[list[tuple[int, Decimal]]] = [[] for _ in pieces]
    updated = [line.model_copy() for line in lines]
    draws: list[CreditDraw] = []
    for i in sorted(range(len(lines)), key=lambda i: lines[i].position):
        line = lines[i]
        remaining = line.remaining
        taken = Decimal(0)
        for p, piece in enumerate(pieces):
            if remaining <= 0:
                break
            # Pieces are cut at every line's start and end + 1: each lies wholly inside or outside a window.
            if left[p] > 0 and line.start <= piece.first and piece.last <= line.end:
                take = min(left[p], remaining)
                left[p] -= take
                remaining -= take
                taken += take
                covered_by[p].append((line.position, take))
        if taken > 0:
            updated[i] = line.model_copy(update={"used": line.used + taken})
            draws.append(CreditDraw(position=line.position, kind=line.kind, amount=taken))

    uncovered = sum(left, Decimal(0))
    drawn = [DatedDraw(first=piece.first, last=piece.last, amount=take, position=position)
             for piece, takes, rest in zip(pieces, covered_by, left)
             for position, take in [*takes, *([(None, rest)] if rest > 0 else [])]]
    return Drawdown(
        draws=draws,
        covered=amount - uncovered,
        uncovered=uncovered,
        lines=updated,
        elastic_billing_active=elastic_billing_active(updated, on),
        pieces=drawn,
    )


def line_cuts_period(line: CreditLineState, first: date, last: date) -> bool:
    """Whether a credit line starts or ends inside the period (D3): only then do the usage's own dates decide what it
    covers; a line valid all period, or not at all, covers the same whatever the usage's dates."""
    return first < line.start <= last or first <= line.end < last
