"""Invoices as the customer reads them (SPEC G1, G2): the list with its filters and one invoice in sections.

Read-only: the HTTP API, the pages and the CSV/PDF documents all read invoices through these functions.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import and_, bindparam, or_, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.types import NullType
from sqlmodel import select

from billing.invoicing import last_day_of
from billing.money import minor_unit, round_money
from billing.statuses import BillingMode, InvoiceStatus, PaymentStatus
from store.db import Database
from store.tables import (BillingProfile, Invoice, InvoiceForgiveness, InvoiceLine, InvoiceTaxLine, Organization,
                          Payment, PaymentMethod)

SUPPORT_SERVICE = "Support"  # the support plan's line: a subscription charge, left out of Summary by Project (G2)
MAX_PAGE = 200


class StatusFilter(StrEnum):
    """G1's filters (Pending, Free, Successful) and each stored status by name."""

    PENDING = "pending"  # G1: not paid yet: the open cycle, and closed, failed or invoiced ones still due
    FREE = "free"  # G1: total 0.00
    SUCCESSFUL = "successful"  # G1: paid (by card, PayPal, transfer, or entirely by credits)
    CLOSED = "closed"
    PAID = "paid"
    FAILED = "failed"
    PREPAID = "prepaid"
    INVOICED = "invoiced"
    FORGIVEN = "forgiven"

    @property
    def statuses(self) -> tuple[InvoiceStatus, ...]:
        return _FILTERS[self] if self in _FILTERS else (InvoiceStatus(self.value.upper()),)


_FILTERS = {
    StatusFilter.PENDING: (InvoiceStatus.PENDING, InvoiceStatus.CLOSED, InvoiceStatus.FAILED, InvoiceStatus.INVOICED),
    StatusFilter.FREE: (InvoiceStatus.FREE,),
    StatusFilter.SUCCESSFUL: (InvoiceStatus.PAID, InvoiceStatus.PREPAID),
}


class Action(StrEnum):
    """What the customer can do with an invoice (G2's Payment Details)."""

    PDF = "PDF"
    VIEW_DETAILS = "VIEW DETAILS"
    PAY_NOW = "PAY NOW"
    RETRY = "RETRY"


class InvoiceSummary(BaseModel):
    """A row of the invoice list (G1)."""

    number: str | None
    kind: str  # cloud | tax | consulting
    status: InvoiceStatus
    period: str
    currency: str
    usage: Decimal
    billed_usage: Decimal
    tax: Decimal
    total: Decimal
    amount_due: Decimal
    created_at: datetime
    paid_at: datetime | None


class InvoicePage(BaseModel):
    invoices: list[InvoiceSummary]
    next_cursor: str | None  # give it as `cursor` for the next page; None on the last page
    from_date: date  # G1: the filter in force, blank defaults filled in
    to_date: date


class Address(BaseModel):
    company_name: str | None
    address_line1: str
    address_line2: str | None
    city: str
    state: str
    postal_code: str
    country: str
    tax_id: str | None


class TaxLine(BaseModel):
    name: str
    rate: Decimal
    amount: Decimal


class UsageDetail(BaseModel):
    """G2 Usage Details: one line item."""

    project: str
    deployment: str | None
    service: str
    sku: str
    start_date: date
    end_date: date
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


class PaymentRow(BaseModel):
    """G2 Payment Details: one way the invoice was (or is being) settled."""

    method: str  # credits | monthly commitment | marketplace | card | PayPal | wire | ach
    date: datetime | None
    status: str
    amount: Decimal
    currency: str
    attempt: int | None = None
    failure_code: str | None = None
    card: str | None = None  # "Visa •••• 4242" for a card payment


class InvoiceDetail(BaseModel):
    """G2: every section of one invoice, as data."""

    number: str | None
    kind: str
    status: InvoiceStatus
    org_id: str
    period: str
    period_start: date
    period_end: date
    currency: str
    usage: Decimal
    billed_usage: Decimal
    explanation: str | None  # G3: why billed usage differs from usage
    tax: Decimal
    tax_lines: list[TaxLine]
    total: Decimal
    credits_applied: Decimal
    invoiced: Decimal
    forgiven: Decimal
    amount_due: Decimal
    fx_rate: Decimal | None
    created_at: datetime
    paid_at: datetime | None
    billing_address: Address | None
    cloud_invoice: str | None  # a tax invoice's cloud invoice
    tax_invoice: str | None  # a cloud invoice's tax invoice
    usage_by_service: dict[str, Decimal]  # the chart "total usage by service"
    usage_by_deployment: dict[str, Decimal]  # the chart "usage by deployment"
    summary_by_project: dict[str, Decimal]  # excluding subscription charges (the support plan)
    summary_by_service: dict[str, Decimal]
    payments: list[PaymentRow]
    actions: list[Action]
    usage_details: list[UsageDetail]
    usage_lines: int = 0  # how many Usage Details lines the invoice has in all
    usage_offset: int = 0  # where `usage_details` starts among them (a page of a long invoice)


class NotFound(Exception):
    """No such thing for this organization (the API answers 404, as if it did not exist at all, I2)."""


def _period_bounds(period: str) -> tuple[date, date]:
    return date(int(period[:4]), int(period[5:7]), 1), last_day_of(period)


def list_invoices(db: Database, org_id: str, *, status: StatusFilter | None = None, from_date: date | None = None,
                  to_date: date | None = None, cursor: str | None = None, limit: int = 50,
                  today: date) -> InvoicePage:
    """G1: the organization's invoices, newest first; a blank From is the organization's creation date, a blank
    To is today. `cursor` continues after the last invoice of the previous page."""
    limit = max(1, min(limit, MAX_PAGE))
    # Core queries of the columns shown (no ORM objects): this is GET /v1/invoices' whole cost, and a page of 200
    # invoices as ORM instances cost more than the query itself.
    with db.engine.connect() as conn:
        created = conn.execute(_ORG_CREATED, {"org_id": org_id}).scalar()
        if created is None:
            raise NotFound(f"no organization {org_id!r}")
        start = from_date or created.date()
        end = to_date or today
        query = _LIST.where(_INV.c.org_id == org_id, _INV.c.created_at >= _midnight(start),
                            _INV.c.created_at < _midnight(end + timedelta(days=1)))
        if status is not None:
            query = query.where(_INV.c.status.in_([str(s_) for s_ in status.statuses]))
        if cursor is not None:
            period, invoice_id = _decode_cursor(cursor)
            query = query.where(or_(_INV.c.period < period, and_(_INV.c.period == period, _INV.c.id < invoice_id)))
        # Newest billing period first, so the open cycle's PENDING invoice (G0) heads the list.
        rows = conn.execute(query.order_by(_INV.c.period.desc(), _INV.c.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    # One validation of the whole page (pydantic-core builds the 200 rows), not one per row.
    return InvoicePage.model_validate({"invoices": [_listed(row) for row in rows],
                                       "next_cursor": _encode_cursor(rows[-1]) if more else None,
                                       "from_date": start, "to_date": end})


_INV = Invoice.__table__
_ORG_CREATED = sa_select(Organization.__table__.c.created_at).where(Organization.__table__.c.id == bindparam("org_id"))
# The listed amounts and timestamps come as the driver gives them (no per-value type processing: 7 of 13 columns of
# up to 200 rows); `_stored_amount` and `_stored_utc` read them as store.db's ExactDecimal and UTCDateTime would.
_RAW = NullType()
_LIST = sa_select(_INV.c.id, _INV.c.number, _INV.c.kind, _INV.c.status, _INV.c.period, _INV.c.currency,
                  *(type_coerce(column, _RAW) for column in (_INV.c.usage, _INV.c.billed_usage, _INV.c.tax,
                                                             _INV.c.total, _INV.c.amount_due, _INV.c.created_at,
                                                             _INV.c.paid_at)))


def _listed(row) -> dict:
    _, number, kind, status, period, currency, usage, billed_usage, tax, total, amount_due, created_at, paid_at = row
    return _summary_fields(number, kind, status, period, currency, _stored_amount(usage),
                           _stored_amount(billed_usage), _stored_amount(tax), _stored_amount(total),
                           _stored_amount(amount_due), _stored_utc(created_at), _stored_utc(paid_at))


def _stored_amount(value: str | Decimal) -> Decimal:
    return Decimal(value)  # exact: SQLite keeps the amount's text, PostgreSQL's NUMERIC arrives as a Decimal


def _stored_utc(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)  # SQLite keeps UTC timestamps as naive ISO text
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)


class BadCursor(ValueError):
    pass


_CURSOR = re.compile(r"^(\d{4}-\d{2})\.(\d{1,18})$")


def _encode_cursor(row: Invoice) -> str:
    return f"{row.period}.{row.id}"


def _decode_cursor(cursor: str) -> tuple[str, int]:
    match = _CURSOR.match(cursor)
    if match is None:
        raise BadCursor("not a cursor this API returned")
    return match[1], int(match[2])


def _summary(row) -> InvoiceSummary:
    return InvoiceSummary.model_validate(_summary_fields(row.number, row.kind, row.status, row.period, row.currency,
                                                         row.usage, row.billed_usage, row.tax, row.total,
                                                         row.amount_due, row.created_at, row.paid_at))


def _summary_fields(number, kind, status, period, currency, usage, billed_usage, tax, total, amount_due, created_at,
                    paid_at) -> dict:
    """A list row's fields; pydantic makes the stored status an InvoiceStatus."""
    usd, cur = _money("USD"), _money(currency)
    return {"number": number, "kind": kind, "status": status, "period": period, "currency": currency,
            "usage": usd(usage), "billed_usage": usd(billed_usage), "tax": cur(tax), "total": cur(total),
            "amount_due": cur(amount_due), "created_at": created_at, "paid_at": paid_at}


# Widening "50" to "50.00" is exact and rounds nothing (Inexact is trapped); an amount with more places than the
# currency's, or a zero (never "-0.00"), goes through round_money, M1's one rounding function.
_WIDEN = Context(prec=60, traps=[Inexact, InvalidOperation, Overflow])


@functools.cache
def _money(currency: str) -> Callable[[Decimal], Decimal]:
    """Amounts with the currency's minor-unit places ("50.00", not "50"): the database keeps them normalized."""
    places = Decimal(1).scaleb(-minor_unit(currency))

    def money(amount: Decimal) -> Decimal:
        try:
            widened = amount.quantize(places, context=_WIDEN)
        except (ArithmeticError, AttributeError):
            return round_money(amount, currency)
        return widened if widened or not widened.is_signed() else round_money(amount, currency)
    return money


def find_invoice(db: Database, org_id: str, number: str) -> Invoice:
    """The organization's invoice by number; NotFound for another organization's (I2)."""
    with db.session() as s:
        row = s.exec(select(Invoice).where(Invoice.number == number, Invoice.org_id == org_id)).first()
    if row is None:
        raise NotFound(f"no invoice {number!r}")
    return row


def lines_source(db: Database, invoice: Invoice) -> int:
    """The invoice whose lines are this one's Usage Details: its own, or for a tax invoice without lines of its own
    its cloud invoice's (a tax invoice restates its cloud invoice's usage, in the cloud invoice's USD)."""
    if invoice.kind != "tax" or invoice.cloud_invoice_id is None:
        return invoice.id
    with db.session() as s:
        own = s.exec(select(InvoiceLine.position).where(InvoiceLine.invoice_id == invoice.id).limit(1)).first()
    return invoice.id if own is not None else invoice.cloud_invoice_id


def invoice_detail(db: Database, org_id: str, number: str, *, usage_offset: int = 0,
                   usage_limit: int | None = None) -> InvoiceDetail:
    """G2: one invoice with every section. Usage Details are every line, or the page of `usage_limit` lines from
    `usage_offset` (an invoice may have 100,000); the charts and summaries always cover every line."""
    invoice = find_invoice(db, org_id, number)
    source_id = lines_source(db, invoice)
    with db.session() as s:
        # The sums read four columns of every line, not whole rows: cheap for 100,000 lines.
        sums = list(s.exec(select(InvoiceLine.service, InvoiceLine.deployment, InvoiceLine.project,
                                  InvoiceLine.amount).where(InvoiceLine.invoice_id == source_id)))
        page = (select(InvoiceLine).where(InvoiceLine.invoice_id == source_id).order_by(InvoiceLine.position)
                .offset(max(usage_offset, 0)))
        lines = list(s.exec(page if usage_limit is None else page.limit(max(usage_limit, 0))))
        tax_lines = list(s.exec(select(InvoiceTaxLine).where(InvoiceTaxLine.invoice_id == invoice.id)
                                .order_by(InvoiceTaxLine.position)))
        payments = list(s.exec(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.attempt)))
        methods = {m.id: m for m in s.exec(select(PaymentMethod).where(
            PaymentMethod.id.in_([p.payment_method_id for p in payments if p.payment_method_id])))}
        profile = s.get(BillingProfile, invoice.org_id)
        forgiveness = s.exec(select(InvoiceForgiveness).where(InvoiceForgiveness.invoice_id == invoice.id)).first()
        cloud = s.get(Invoice, invoice.cloud_invoice_id) if invoice.cloud_invoice_id else None
        tax_invoice = s.exec(select(Invoice.number).where(Invoice.cloud_invoice_id == invoice.id)).first()
    by_service: dict[str, Decimal] = defaultdict(Decimal)
    by_deployment: dict[str, Decimal] = defaultdict(Decimal)
    by_project: dict[str, Decimal] = defaultdict(Decimal)
    for service, deployment, project, amount in sums:
        by_service[service] += amount
        by_deployment[deployment or "(no deployment)"] += amount
        if service != SUPPORT_SERVICE:
            by_project[project] += amount
    start, end = _period_bounds(invoice.period)
    usd, cur = _money("USD"), _money(invoice.currency)
    tax_cur = cur if invoice.kind == "tax" else usd  # a tax invoice's lines are in its own currency
    return InvoiceDetail(
        number=invoice.number, kind=invoice.kind, status=InvoiceStatus(invoice.status), org_id=invoice.org_id,
        period=invoice.period, period_start=start, period_end=end, currency=invoice.currency, usage=usd(invoice.usage),
        billed_usage=usd(invoice.billed_usage), explanation=invoice.explanation, tax=cur(invoice.tax),
        tax_lines=[TaxLine(name=t.name, rate=t.rate, amount=tax_cur(t.amount)) for t in tax_lines],
        total=cur(invoice.total), credits_applied=cur(invoice.credits_applied), invoiced=cur(invoice.invoiced),
        forgiven=cur(invoice.forgiven), amount_due=cur(invoice.amount_due), fx_rate=invoice.fx_rate,
        created_at=invoice.created_at,
        paid_at=invoice.paid_at, billing_address=_address(profile) if profile else None,
        cloud_invoice=cloud.number if cloud else None, tax_invoice=tax_invoice,
        usage_by_service=_cents(by_service), usage_by_deployment=_cents(by_deployment),
        summary_by_project=_cents(by_project), summary_by_service=_cents(by_service),
        payments=_payment_rows(invoice, payments, methods, forgiveness), actions=available_actions(invoice, payments),
        usage_lines=len(sums), usage_offset=max(usage_offset, 0),
        usage_details=[UsageDetail(project=line.project, deployment=line.deployment, service=line.service,
                                   sku=line.sku, start_date=line.start_date, end_date=line.end_date,
                                   quantity=line.quantity, unit=line.unit, unit_price=line.unit_price,
                                   amount=usd(line.amount)) for line in lines])


def _cents(sums: dict[str, Decimal]) -> dict[str, Decimal]:
    usd = _money("USD")  # usage is priced in USD (M2)
    return {name: usd(amount) for name, amount in sums.items()}


def invoice_payments(db: Database, org_id: str, number: str) -> list[PaymentRow]:
    return invoice_detail(db, org_id, number).payments


def _address(profile: BillingProfile) -> Address:
    return Address(company_name=profile.company_name, address_line1=profile.address_line1,
                   address_line2=profile.address_line2, city=profile.city, state=profile.state,
                   postal_code=profile.postal_code, country=profile.country, tax_id=profile.tax_id)


_METHOD_NAMES = {"card": "card", "paypal": "PayPal", "credits": "credits", "marketplace": "marketplace",
                 "wire": "wire", "ach": "ach"}


def _payment_rows(invoice: Invoice, payments: list[Payment], methods: dict[int, PaymentMethod],
                  forgiveness: InvoiceForgiveness | None) -> list[PaymentRow]:
    rows: list[PaymentRow] = []
    has_credit_row = any(p.method == "credits" for p in payments)
    if invoice.credits_applied and not has_credit_row:
        rows.append(PaymentRow(method="credits", date=invoice.created_at, status="APPLIED",
                               amount=round_money(invoice.credits_applied, invoice.currency), currency=invoice.currency))
    if invoice.invoiced:
        mode = BillingMode(invoice.billing_mode)
        rows.append(PaymentRow(method="marketplace" if mode is BillingMode.MARKETPLACE else "monthly commitment",
                               date=invoice.created_at, status=invoice.status,
                               amount=round_money(invoice.invoiced, invoice.currency),
                               currency=invoice.currency))
    for p in payments:
        method = methods.get(p.payment_method_id) if p.payment_method_id else None
        card = f"{method.brand or 'card'} •••• {method.last4}" if method is not None and method.last4 else None
        rows.append(PaymentRow(method=_METHOD_NAMES.get(p.method, p.method), date=p.updated_at, status=p.status,
                               amount=round_money(p.amount, p.currency), currency=p.currency, attempt=p.attempt, failure_code=p.failure_code,
                               card=card))
    if forgiveness is not None:
        rows.append(PaymentRow(method="forgiven", date=forgiveness.at, status=InvoiceStatus.FORGIVEN,
                               amount=round_money(forgiveness.amount, forgiveness.currency), currency=forgiveness.currency))
    return rows


def available_actions(invoice: Invoice, payments: list[Payment]) -> list[Action]:
    """G2: PDF and VIEW DETAILS always; PAY NOW while an amount is due on a closed invoice charged to the method on
    file; RETRY after a failed attempt (F3)."""
    actions = [Action.PDF, Action.VIEW_DETAILS]
    if invoice.kind == "tax" or invoice.status == InvoiceStatus.PENDING or invoice.amount_due <= 0:
        return actions
    if not BillingMode(invoice.billing_mode).charged_to_card:
        return actions
    if any(p.status == PaymentStatus.PROCESSING for p in payments):
        return actions  # the issuer is settling a charge (E3): nothing to do but wait
    actions.append(Action.PAY_NOW)
    if invoice.status == InvoiceStatus.FAILED:
        actions.append(Action.RETRY)
    return actions


def current_cycle(db: Database, org_id: str) -> InvoiceSummary | None:
    """G0: the current cycle's PENDING invoice, its running total following the usage recorded so far."""
    with db.session() as s:
        row = s.exec(select(Invoice).where(Invoice.org_id == org_id, Invoice.status == InvoiceStatus.PENDING,
                                           Invoice.kind == "cloud").order_by(Invoice.id.desc())).first()
    return _summary(row) if row is not None else None
