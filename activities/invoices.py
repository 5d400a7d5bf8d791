"""Invoice activities: settle a period's cloud invoice, once per organization and period, in one transaction.

Settling rates the usage and applies the subscription (SPEC D1), adds the support lines (B1) and the tax lines,
draws the credits (D3, D6), decides the status (D8) and issues the tax invoice in the subscription's currency
(D5, M2). Keyed by the invoice's business key, so a retry changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from collections.abc import Sequence

from sqlalchemy import Connection, Integer, Row, bindparam, insert, literal, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select
from temporalio import activity

from activities._context import activity_log_context
from activities.fx import FxRequest, rate_in_force
from activities.tax import TaxActivities, TaxRequest
from billing.credits import date_by_usage, draw_credits, line_cuts_period, usage_by_span
from store.credits import credit_lines, line_states, store_draw
from store.cycle import cloud_invoice_key, open_cycle
from store.db import Database
from billing.invoicing import (CLOUD_CURRENCY, first_day_of, invoice_number, last_day_of, next_period, period_end,
                              price_usage, tax_invoice_number)
from billing.subscriptions import CommitmentState, SubscriptionTerms, SubscriptionType
from billing.settlement import ZERO, Subscribed, plan_tax_invoice, settle, status_of, tax_invoice_currency
from billing.support import PlanPeriod
from store.tables import (Activation, BillingProfile, Invoice, InvoiceLine, InvoiceStatus, InvoiceTaxLine, Subscription,
                         SupportPlanPeriod, UsageLine)
from billing.tax import Product, TaxLine
from contracts.invoices import TaxInvoiceSummary, InvoiceSummary, SettleInvoiceRequest  # noqa: F401
from billing.statuses import BillingMode


_USAGE_COLUMNS = "project, service, quantity, unit_price, id"
_USAGE_SQL = f"SELECT {_USAGE_COLUMNS} FROM usage_lines WHERE org_id = %s AND period = %s ORDER BY id"
_DATED_USAGE_SQL = (f"SELECT {_USAGE_COLUMNS}, start_date, end_date FROM usage_lines WHERE org_id = %s AND period = %s "
                    "ORDER BY id")


_COPIED = ["project", "deployment", "service", "sku", "start_date", "end_date", "quantity", "unit", "unit_price"]
_COPY_LINES_SQL = (
    f"INSERT INTO invoice_lines (invoice_id, position, {', '.join(_COPIED)}, amount) "
    f"SELECT %s, priced.n - 1, {', '.join('u.' + name for name in _COPIED)}, priced.amount "
    "FROM unnest(%s::integer[], %s::numeric[]) WITH ORDINALITY AS priced(usage_id, amount, n) "
    "JOIN usage_lines u ON u.id = priced.usage_id AND u.org_id = %s AND u.period = %s")


def _usage_rows(conn: Connection, org_id: str, period: str, dated: bool) -> Sequence[Sequence]:
    """(project, service, quantity, unit_price, id[, start_date, end_date]) of the period's usage, in id order, as
    plain tuples: an organization may have a million lines, so no ORM objects and, on PostgreSQL, no SQLAlchemy rows
    (the driver's cursor, in the session's transaction, hands NUMERIC over as Decimal). The dates only when a credit
    line's window cuts the period (D3): reading and grouping a million dates is most of the cost otherwise."""
    if conn.dialect.name == "postgresql":
        with conn.connection.dbapi_connection.cursor() as cursor:
            return cursor.execute(_DATED_USAGE_SQL if dated else _USAGE_SQL, (org_id, period)).fetchall()
    usage = UsageLine.__table__.c
    columns = [usage.project, usage.service, usage.quantity, usage.unit_price, usage.id]
    if dated:
        columns += [usage.start_date, usage.end_date]
    return conn.execute(select(*columns).where(usage.org_id == org_id, usage.period == period)
                        .order_by(usage.id)).all()


def _copy_usage_lines(conn: Connection, invoice_id: int, org_id: str, period: str, rows: Sequence[Sequence],
                      amounts: Sequence[Decimal]) -> None:
    """The database copies each usage row into an invoice line, with the amount priced in Python (M1) joined by
    usage id: one statement for all the lines. The usage side is read through its (org, period) index, and every
    row read must become a line, or nothing is stored."""
    ids = [row[4] for row in rows]
    if conn.dialect.name == "postgresql":
        # One fixed statement through the driver's cursor; the ids and amounts travel as two array literals (digits
        # and points only), which cost less to build and to parse than a parameter per element.
        with conn.connection.dbapi_connection.cursor() as cursor:
            stored = cursor.execute(_COPY_LINES_SQL, (invoice_id, "{" + ",".join(map(str, ids)) + "}",
                                                      "{" + ",".join(map(str, amounts)) + "}", org_id, period)
                                    ).rowcount
    else:  # SQLite: [id, amount] pairs in JSON, each amount as the text ExactDecimal stores
        usage = UsageLine.__table__.c
        priced = func.json_each(json.dumps([[i, str(a)] for i, a in zip(ids, amounts)])).table_valued("key", "value")
        usage_id, amount = func.json_extract(priced.c.value, "$[0]"), func.json_extract(priced.c.value, "$[1]")
        stored = conn.execute(insert(InvoiceLine.__table__).from_select(
            ["invoice_id", "position", *_COPIED, "amount"],
            select(literal(invoice_id, Integer), priced.c.key, *(usage[name] for name in _COPIED), amount)
            .join_from(priced, UsageLine.__table__,
                       (usage.id == usage_id) & (usage.org_id == org_id) & (usage.period == period))
            .order_by(priced.c.key)), execution_options={"preserve_rowcount": True}).rowcount
    if stored != len(rows):
        raise RuntimeError(f"{len(rows)} usage lines were priced for invoice {invoice_id} but {stored} were copied")


def _insert_tax_lines(conn: Connection, invoice_id: int, lines: Sequence[TaxLine]) -> None:
    if lines:
        conn.execute(_INSERT_TAX_LINES, [dict(invoice_id=invoice_id, position=position, name=line.name,
                                              rate=line.rate, amount=line.amount)
                                         for position, line in enumerate(lines)])


def _tax_invoice_summary(s: Session, invoice: Invoice) -> TaxInvoiceSummary | None:
    return _tax_summary_of(s.exec(select(Invoice).where(Invoice.cloud_invoice_id == invoice.id)).first())


def _tax_summary_of(tax_invoice: Invoice | None) -> TaxInvoiceSummary | None:
    if tax_invoice is None:
        return None
    return TaxInvoiceSummary(invoice_id=tax_invoice.id, number=tax_invoice.number, currency=tax_invoice.currency,
                             total=tax_invoice.total, amount_due=tax_invoice.amount_due, fx_rate=tax_invoice.fx_rate)


def _subscription(s: Session, org_id: str) -> Subscription | None:
    return s.exec(select(Subscription).where(Subscription.org_id == org_id, Subscription.status == "ACTIVE")
                  .order_by(Subscription.id.desc())).first()


def _terms(sub: Subscription) -> SubscriptionTerms:
    return SubscriptionTerms(type=sub.type, term_start=sub.term_start, term_months=sub.term_months,
                             commitment=sub.commitment, currency=sub.currency)


def _tax_invoice_currency(sub: Subscription | None, period: str) -> str | None:
    """SPEC D5: a subscription in its term gets a tax invoice each month; marketplace never does."""
    if sub is None or sub.type == SubscriptionType.MARKETPLACE or _terms(sub).month_index(period) is None:
        return None
    return sub.currency


_UNKNOWN = object()


def summarize(s: Session, invoice: Invoice, created: bool, sub: Subscription | None | object = _UNKNOWN,
              tax_invoice: TaxInvoiceSummary | None | object = _UNKNOWN) -> InvoiceSummary:
    """The invoice as workflows see it; `sub` and `tax_invoice` are read unless the caller has them already."""
    if sub is _UNKNOWN:
        sub = _subscription(s, invoice.org_id)
    return InvoiceSummary(invoice_id=invoice.id, number=invoice.number, org_id=invoice.org_id,
                          period=invoice.period, kind=invoice.kind, status=invoice.status,
                          currency=invoice.currency, billed_usage=invoice.billed_usage, tax=invoice.tax,
                          total=invoice.total, amount_due=invoice.amount_due, created=created,
                          billing_mode=invoice.billing_mode, taxable=BillingMode(invoice.billing_mode).taxable,
                          refundable=BillingMode(invoice.billing_mode).refundable,
                          tax_invoice_currency=_tax_invoice_currency(sub, invoice.period),
                          tax_invoice=_tax_invoice_summary(s, invoice) if tax_invoice is _UNKNOWN else tax_invoice)


def _apply_credits(s: Session, invoice: Invoice, at: datetime, amount: Decimal, key: str) -> Decimal:
    """SPEC D3/D6: draw `amount` of the invoice from the credit lines, top to bottom; return what they leave."""
    s.flush()  # the statements below, on the session's connection, see what it changed
    conn = s.connection()
    rows = credit_lines(conn, invoice.org_id)
    if not rows or amount == 0:
        return amount
    usage = [(line.start_date, line.end_date, line.amount) for line in s.exec(
        select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.service != "Support"))]
    dated = date_by_usage(amount, usage_by_span(usage, [u[2] for u in usage], sum((u[2] for u in usage), Decimal(0))),
                          first_day_of(invoice.period), last_day_of(invoice.period))
    drawdown = draw_credits(line_states(rows), amount, last_day_of(invoice.period), dated=dated)
    store_draw(conn, rows, drawdown, org_id=invoice.org_id, invoice_id=invoice.id, invoice_number=invoice.number,
               currency=invoice.currency, at=at, key=key)
    if drawdown.covered > 0:
        invoice.credits_applied += drawdown.covered
    return drawdown.uncovered


def _awaiting_activation(s: Session, invoice: Invoice) -> str:
    """SPEC D2: while a subscription's code is awaited, card charges are held for the grace period; after it,
    they are made, non-refundable."""
    activation = s.exec(select(Activation).where(Activation.org_id == invoice.org_id,
                                                 Activation.status == "PENDING")).first()
    if activation is None or invoice.billing_mode != BillingMode.CARD:
        return invoice.billing_mode
    return BillingMode.GRACE_CHARGE if activation.grace_expired else BillingMode.ACTIVATION_HOLD


def _apply_credits_and_status(s: Session, invoice: Invoice, at: datetime, amount: Decimal | None = None,
                              key: str = "credits") -> None:
    """D3/D6/D8: credits first (on the total, or on `amount` still open); what they leave is charged to the
    card, invoiced under the subscription, or held while an activation code is awaited (D2)."""
    remainder = _apply_credits(s, invoice, at, invoice.total if amount is None else amount, key)
    invoice.status, invoiced, invoice.amount_due = status_of(invoice.total, remainder, invoice.billing_mode)
    if invoice.status == InvoiceStatus.PREPAID:
        invoice.paid_at = at
    elif invoice.status == InvoiceStatus.INVOICED:
        invoice.invoiced = invoiced


# The statements settlement runs for every organization, built once (bound by name when executed).
_SUBSCRIPTIONS, _INVOICES, _PROFILES = Subscription.__table__, Invoice.__table__, BillingProfile.__table__
_PLANS, _ACTIVATIONS = SupportPlanPeriod.__table__, Activation.__table__
_ACTIVE_SUBSCRIPTION = (select(_SUBSCRIPTIONS).where(_SUBSCRIPTIONS.c.org_id == bindparam("org_id"),
                                                     _SUBSCRIPTIONS.c.status == "ACTIVE")
                        .order_by(_SUBSCRIPTIONS.c.id.desc()).limit(1))
_INVOICE_BY_KEY = select(_INVOICES.c.id, _INVOICES.c.number, _INVOICES.c.status).where(
    _INVOICES.c.key == bindparam("key"))
_CLOSE_PENDING = update(_INVOICES).where(_INVOICES.c.id == bindparam("pending_id"),
                                         _INVOICES.c.status == InvoiceStatus.PENDING)
_PROFILE = select(_PROFILES.c.country, _PROFILES.c.state, _PROFILES.c.tax_id).where(
    _PROFILES.c.org_id == bindparam("org_id"))
_SUPPORT_PERIODS = (select(_PLANS.c.plan, _PLANS.c.start_date, _PLANS.c.end_date, _PLANS.c.trial_ends,
                           _PLANS.c.billing_stopped)
                    .where(_PLANS.c.org_id == bindparam("org_id")).order_by(_PLANS.c.start_date, _PLANS.c.id))
_PENDING_ACTIVATION = select(_ACTIVATIONS.c.grace_expired).where(_ACTIVATIONS.c.org_id == bindparam("org_id"),
                                                                 _ACTIVATIONS.c.status == "PENDING").limit(1)
_INSERT_INVOICE = insert(_INVOICES).returning(_INVOICES.c.id)
_SET_NUMBER = update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id")).values(number=bindparam("number"))
_INSERT_TAX_LINES = insert(InvoiceTaxLine.__table__)
_INSERT_LINES = insert(InvoiceLine.__table__)
_MOVE_COMMITMENT = update(_SUBSCRIPTIONS).where(_SUBSCRIPTIONS.c.id == bindparam("subscription_id")).values(
    bank=bindparam("bank"), cumulative_usage=bindparam("cumulative_usage"),
    cumulative_billed=bindparam("cumulative_billed"), months_billed=bindparam("months_billed"),
    banked_total=bindparam("banked_total"), last_period=bindparam("last_period"))


def commitment_state_of(sub: Subscription | Row) -> CommitmentState:
    """The commitment's running state as stored with the subscription (D1)."""
    return CommitmentState(bank=sub.bank, cumulative_usage=sub.cumulative_usage,
                           cumulative_billed=sub.cumulative_billed, months_billed=sub.months_billed,
                           banked_total=sub.banked_total)


class InvoiceActivities:
    def __init__(self, db: Database, tax: TaxActivities | None = None) -> None:
        self.db = db
        self.tax = tax or TaxActivities(db)

    @activity.defn(name="settle_cloud_invoice")
    def settle_cloud_invoice(self, request: SettleInvoiceRequest) -> InvoiceSummary:
        """The whole month-end of one organization's cloud invoice in one transaction: close it (rate the usage,
        apply the subscription, D1), add the support lines (B1), tax it (C1-C4), draw the credits (D3, D6), decide
        its status (D8) and issue the tax invoice (D5, M2). Keyed by the invoice's business key: a retry, a second
        settlement or a crash after commit changes nothing, and a crash before commit leaves nothing half-written."""
        key = cloud_invoice_key(request.org_id, request.period)
        with activity_log_context(org_id=request.org_id, period=request.period) as log:
            try:
                with self.db.engine.begin() as conn:  # Core: no ORM session on the path every organization takes
                    existing = conn.execute(_INVOICE_BY_KEY, {"key": key}).first()
                    created = existing is None or existing.status == InvoiceStatus.PENDING
                    if created:
                        sub = conn.execute(_ACTIVE_SUBSCRIPTION, {"org_id": request.org_id}).first()
                        summary = self._settle(conn, key, request, sub, pending=existing)
                if not created:
                    with self.db.session() as s:
                        summary = summarize(s, s.get(Invoice, existing.id), False)
            except IntegrityError:
                # A concurrent attempt settled it first: the unique business key refused the duplicate.
                with self.db.session() as s:
                    return summarize(s, s.exec(select(Invoice).where(Invoice.key == key)).one(), created=False)
            if created:
                log.info("cloud invoice settled", invoice=summary.number, billed_usage=str(summary.billed_usage),
                         tax=str(summary.tax), total=str(summary.total), status=summary.status,
                         billing_mode=summary.billing_mode, amount_due=str(summary.amount_due))
            else:
                log.info("cloud invoice already settled", invoice=summary.number, status=summary.status)
            return summary

    def _settle(self, conn: Connection, key: str, request: SettleInvoiceRequest, sub: Row | None,
                pending: Row | None) -> InvoiceSummary:
        """Load what settlement needs (a statement per table), compute the plan (billing.settlement), store it.
        Prepared Core statements, not ORM units of work: this runs for every organization at every month-end."""
        org_id, period = request.org_id, request.period
        by_org = {"org_id": org_id}
        credit_rows = credit_lines(conn, org_id)
        credits = line_states(credit_rows)
        dated = any(line_cuts_period(line, first_day_of(period), last_day_of(period)) for line in credits)
        rows = _usage_rows(conn, org_id, period, dated)
        priced = price_usage(row[:4] for row in rows)
        subscribed = None if sub is None else Subscribed(terms=_terms(sub), state=commitment_state_of(sub))
        support = [PlanPeriod(plan=r.plan, start=r.start_date, end=r.end_date, trial_ends=r.trial_ends,
                              billing_stopped=r.billing_stopped) for r in conn.execute(_SUPPORT_PERIODS, by_org)]
        grace = conn.execute(_PENDING_ACTIVATION, by_org).first()
        profile = conn.execute(_PROFILE, by_org).first()

        def tax_for(amount: Decimal) -> list[TaxLine]:
            return self.tax.quote_for(profile, TaxRequest(org_id=org_id, product=Product.ATLAS, amount=amount,
                                                          currency=CLOUD_CURRENCY, on=last_day_of(period))).lines

        def fx_rate(currency: str) -> Decimal:
            with Session(bind=conn) as s:
                return rate_in_force(s, FxRequest(currency=currency, at=period_end(period))).rate

        plan = settle(period=period, priced=priced, sub=subscribed, support=support, tax_for=tax_for,
                      activation=None if grace is None else ("expired" if grace[0] else "pending"), credits=credits,
                      fx_rate=fx_rate, usage_spans=usage_by_span(rows, priced.amounts, priced.usage, start=5, end=6)
                      if dated else ())

        at = request.at
        closed = dict(
            status=plan.status, usage=plan.usage, billed_usage=plan.billed_usage, tax=plan.tax, total=plan.total,
            amount_due=plan.amount_due, created_at=at, paid_at=at if plan.paid else None,
            billing_mode=plan.billing_mode, credits_applied=plan.credits_applied, invoiced=plan.invoiced,
            explanation=plan.explanation)
        if pending is None:
            invoice_id = conn.execute(_INSERT_INVOICE, dict(
                key=key, number=None, fx_rate=None, cloud_invoice_id=None, org_id=org_id, kind="cloud", period=period,
                currency=CLOUD_CURRENCY, **closed)).scalar_one()
            number = invoice_number(period, invoice_id)
            conn.execute(_SET_NUMBER, {"invoice_id": invoice_id, "number": number})
        else:  # G0: the cycle's PENDING invoice is closed, keeping its id and number; issued at the month-end
            invoice_id, number = pending.id, pending.number
            if conn.execute(_CLOSE_PENDING, {"pending_id": invoice_id, **closed}).rowcount != 1:
                raise RuntimeError(f"invoice {number} was closed by a concurrent settlement")  # retried: then found
        _copy_usage_lines(conn, invoice_id, org_id, period, rows, priced.amounts)
        if plan.support_lines:
            first, last = first_day_of(period), last_day_of(period)
            conn.execute(_INSERT_LINES, [dict(
                invoice_id=invoice_id, position=len(rows) + offset, project="-", deployment=None, service="Support",
                sku=f"SUPPORT_{line.plan.value.upper()}", start_date=first, end_date=last,
                quantity=Decimal(line.days), unit="days", unit_price=line.amount / line.days, amount=line.amount)
                for offset, line in enumerate(plan.support_lines)])
        _insert_tax_lines(conn, invoice_id, plan.tax_lines)
        if plan.drawdown is not None:
            store_draw(conn, credit_rows, plan.drawdown, org_id=org_id, invoice_id=invoice_id, invoice_number=number,
                       currency=CLOUD_CURRENCY, at=at)
        if sub is not None:
            # The commitment's state moves in the same transaction as the invoice that moved it.
            state = plan.billing.state
            conn.execute(_MOVE_COMMITMENT, dict(
                subscription_id=sub.id, bank=state.bank, cumulative_usage=state.cumulative_usage,
                cumulative_billed=state.cumulative_billed, months_billed=state.months_billed,
                banked_total=state.banked_total, last_period=period))
        tax_summary = None
        if plan.tax_invoice is not None:
            ti = plan.tax_invoice
            tax_id = conn.execute(_INSERT_INVOICE, dict(
                key=f"{org_id}:{period}:tax", number=None, org_id=org_id, kind="tax", period=period, status=plan.status,
                currency=ti.currency, usage=ti.usage, billed_usage=ti.billed_usage, tax=ti.tax, total=ti.total,
                amount_due=ti.amount_due, created_at=at, paid_at=at if plan.paid else None,
                billing_mode=plan.billing_mode, credits_applied=ZERO, invoiced=ZERO, fx_rate=ti.fx_rate,
                cloud_invoice_id=invoice_id, explanation=None)).scalar_one()
            tax_number = tax_invoice_number(period, tax_id)
            conn.execute(_SET_NUMBER, {"invoice_id": tax_id, "number": tax_number})
            _insert_tax_lines(conn, tax_id, ti.tax_lines)
            tax_summary = TaxInvoiceSummary(invoice_id=tax_id, number=tax_number, currency=ti.currency, total=ti.total,
                                            amount_due=ti.amount_due, fx_rate=ti.fx_rate)
        open_cycle(conn, org_id, next_period(period), at)  # G0: the next cycle's PENDING invoice
        return InvoiceSummary(
            invoice_id=invoice_id, number=number, org_id=org_id, period=period, kind="cloud", status=plan.status,
            currency=CLOUD_CURRENCY, billed_usage=plan.billed_usage, tax=plan.tax, total=plan.total,
            amount_due=plan.amount_due, created=True, billing_mode=plan.billing_mode,
            taxable=BillingMode(plan.billing_mode).taxable, refundable=BillingMode(plan.billing_mode).refundable,
            tax_invoice_currency=tax_invoice_currency(subscribed, period), tax_invoice=tax_summary)


def issue_tax_invoice(s: Session, cloud: Invoice, tax_lines: Sequence[TaxLine], fx_rate: Decimal | None,
                      currency: str, at: datetime) -> Invoice:
    """SPEC D5/M2: a held month's tax invoice once it is billed, in the subscription's currency at the rate in force
    at period end (the settlement plans the month-end ones in billing.settlement)."""
    rate = Decimal("1") if currency == CLOUD_CURRENCY else fx_rate
    if rate is None:
        raise ValueError(f"a {currency} tax invoice needs the USD->{currency} rate")
    plan = plan_tax_invoice(currency, rate, usage=cloud.usage, billed=cloud.billed_usage, tax_lines=tax_lines,
                            covered=cloud.credits_applied, status=cloud.status)
    tax_invoice = Invoice(key=f"{cloud.org_id}:{cloud.period}:tax", org_id=cloud.org_id, kind="tax",
                          period=cloud.period, status=cloud.status, currency=currency, usage=plan.usage,
                          billed_usage=plan.billed_usage, tax=plan.tax, total=plan.total, amount_due=plan.amount_due,
                          created_at=at, billing_mode=cloud.billing_mode, fx_rate=plan.fx_rate,
                          cloud_invoice_id=cloud.id, paid_at=cloud.paid_at)
    s.add(tax_invoice)
    s.flush()
    tax_invoice.number = tax_invoice_number(cloud.period, tax_invoice.id)
    s.add(tax_invoice)
    for position, line in enumerate(plan.tax_lines):
        s.add(InvoiceTaxLine(invoice_id=tax_invoice.id, position=position, **line.model_dump()))
    return tax_invoice
