"""Building the cloud invoice from rated usage: one rounding per line, totals as sums (SPEC M1, C4, G2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import (MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation, Overflow,
                     localcontext)

from pydantic import BaseModel

from billing.money import minor_unit

CLOUD_CURRENCY = "USD"  # SPEC M2: the cloud invoice is always in USD

# SPEC M1 for a whole invoice at once: with no precision limit the product quantity x unit price is exact,
# and quantize then rounds it once, half-up to the cent, as round_money does (which a test checks).
_PRICING = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_UP,
                   traps=[InvalidOperation, Overflow])
_CENT = Decimal(1).scaleb(-minor_unit(CLOUD_CURRENCY))
_ZERO_CENTS = _CENT * 0  # round_money's zero: never "-0.00"


class UsageItem(BaseModel):
    project: str
    deployment: str | None = None
    service: str
    sku: str
    start_date: date
    end_date: date
    quantity: Decimal
    unit: str = ""
    unit_price: Decimal


class InvoiceLineDraft(UsageItem):
    amount: Decimal


class CloudInvoiceDraft(BaseModel):
    lines: list[InvoiceLineDraft]
    usage: Decimal
    by_project: dict[str, Decimal]  # G2: Summary by Project
    by_service: dict[str, Decimal]  # G2: Summary by Service


@dataclass(frozen=True, slots=True)
class PricedUsage:
    """What `price_usage` makes of a period's usage rows: an amount per row (in row order) and the sums."""

    amounts: list[Decimal]
    usage: Decimal
    by_project: dict[str, Decimal]  # G2: Summary by Project
    by_service: dict[str, Decimal]  # G2: Summary by Service


def price_usage(rows: Iterable[Sequence]) -> PricedUsage:
    """Price usage rows given as (project, service, quantity, unit_price) tuples, e.g. straight from a query.

    The same result as `build_cloud_invoice` without a model per line: each amount rounded once (M1), every sum
    a sum of rounded amounts (never re-rounded).
    """
    amounts: list[Decimal] = []
    append = amounts.append
    by_pair: dict[tuple[str, str], Decimal] = {}
    get = by_pair.get
    zero, cent, zero_cents = Decimal(0), _CENT, _ZERO_CENTS  # locals: this loop runs once per usage line
    with localcontext(_PRICING):
        for project, service, quantity, unit_price in rows:
            amount = (quantity * unit_price).quantize(cent)
            if not amount:
                amount = zero_cents
            append(amount)
            pair = project, service
            by_pair[pair] = get(pair, zero) + amount
        by_project: dict[str, Decimal] = {}
        by_service: dict[str, Decimal] = {}
        for (project, service), amount in by_pair.items():
            by_project[project] = by_project.get(project, zero) + amount
            by_service[service] = by_service.get(service, zero) + amount
        usage = sum(by_project.values(), Decimal("0"))
    if not usage.is_finite():  # as round_money refuses a NaN amount
        raise ValueError(f"usage amounts must be finite, got a total of {usage}")
    return PricedUsage(amounts=amounts, usage=usage, by_project=by_project, by_service=by_service)


def build_cloud_invoice(items: Iterable[UsageItem]) -> CloudInvoiceDraft:
    """Price every usage line, then total and summarise the rounded amounts (never re-round a sum)."""
    items = list(items)
    priced = price_usage([(item.project, item.service, item.quantity, item.unit_price) for item in items])
    # The items are validated already: the line models are built from their fields without validating again.
    lines = [InvoiceLineDraft.model_construct(**{**item.__dict__, "amount": amount})
             for item, amount in zip(items, priced.amounts)]
    return CloudInvoiceDraft(lines=lines, usage=priced.usage, by_project=priced.by_project,
                             by_service=priced.by_service)


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def period_before(moment: datetime) -> str:
    """The month that ended at `moment` (a month-end runs at 00:00 UTC on the 1st)."""
    return period_of(moment.date() - timedelta(days=1))


def last_closed_period(moment: datetime) -> str:
    """The latest month that has ended by `moment`, whatever day of the month it is (the 15th of March: February)."""
    return period_of(moment.date().replace(day=1) - timedelta(days=1))


def last_day_of(period: str) -> date:
    year, month = (int(part) for part in period.split("-"))
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return date.fromordinal(first_of_next.toordinal() - 1)


def first_day_of(period: str) -> date:
    return date.fromisoformat(f"{period}-01")


def period_end(period: str) -> datetime:
    """The instant the period ended: 00:00 UTC on the 1st of the next month."""
    return datetime.combine(last_day_of(period) + timedelta(days=1), time(0), tzinfo=timezone.utc)


def invoice_number(period: str, invoice_id: int) -> str:
    return f"INV-{period.replace('-', '')}-{invoice_id:06d}"


def tax_invoice_number(period: str, invoice_id: int) -> str:
    """The tax invoice restating a cloud invoice (D5) is numbered in the same sequence, TAX- for INV-."""
    return f"TAX-{period.replace('-', '')}-{invoice_id:06d}"
