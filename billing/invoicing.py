"""Building the cloud invoice from rated usage: one rounding per line, totals as sums (SPEC M1, C4, G2)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel

from billing.money import round_money

CLOUD_CURRENCY = "USD"  # SPEC M2: the cloud invoice is always in USD


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


def price_line(item: UsageItem) -> InvoiceLineDraft:
    return InvoiceLineDraft(**item.model_dump(), amount=round_money(item.quantity * item.unit_price, CLOUD_CURRENCY))


def build_cloud_invoice(items: Iterable[UsageItem]) -> CloudInvoiceDraft:
    """Price every usage line, then total and summarise the rounded amounts (never re-round a sum)."""
    lines = [price_line(item) for item in items]
    by_project: dict[str, Decimal] = defaultdict(Decimal)
    by_service: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        by_project[line.project] += line.amount
        by_service[line.service] += line.amount
    usage = sum((line.amount for line in lines), Decimal("0"))
    return CloudInvoiceDraft(lines=lines, usage=usage, by_project=dict(by_project), by_service=dict(by_service))


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def period_before(moment: datetime) -> str:
    """The month that ended at `moment` (a month-end runs at 00:00 UTC on the 1st)."""
    return period_of(moment.date() - timedelta(days=1))


def last_day_of(period: str) -> date:
    year, month = (int(part) for part in period.split("-"))
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return date.fromordinal(first_of_next.toordinal() - 1)


def invoice_number(period: str, invoice_id: int) -> str:
    return f"INV-{period.replace('-', '')}-{invoice_id:06d}"
