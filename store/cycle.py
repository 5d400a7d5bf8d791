"""The current billing cycle's PENDING cloud invoice (SPEC G0): opened on the cycle's first day, its running total
following the usage received so far, closed by the month-end settlement (which keeps its id and number)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from billing.invoicing import CLOUD_CURRENCY, invoice_number, price_usage
from store.tables import Invoice, InvoiceStatus, UsageLine
from billing.statuses import BillingMode

ZERO = Decimal("0.00")
_INVOICES = Invoice.__table__
_USAGE = UsageLine.__table__
_SET_NUMBER = update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id")).values(number=bindparam("number"))


def cloud_invoice_key(org_id: str, period: str) -> str:
    """The business key of an organization's cloud invoice for a period: one per organization and month (H1)."""
    return f"{org_id}:{period}:cloud"


def cloud_invoice_key_sql(org_id: ColumnElement[str], period: str) -> ColumnElement[str]:
    """cloud_invoice_key of an organization id column, in SQL: to join organizations to their cloud invoice."""
    return org_id + cloud_invoice_key("", period)


def cycle_invoice_number(conn: Connection, org_id: str, period: str) -> str | None:
    """The number of the organization's cloud invoice for `period` (its cycle's PENDING invoice, or the invoice the
    settlement closed it into), None if its cycle opened none (SPEC G0)."""
    return conn.execute(select(_INVOICES.c.number).where(_INVOICES.c.key == cloud_invoice_key(org_id, period))).scalar()


def _running(usage: Decimal) -> dict[str, Decimal]:
    # Before month-end nothing is billed under a subscription, taxed or drawn: the running total is the usage.
    return dict(usage=usage, billed_usage=usage, tax=ZERO, total=usage, amount_due=usage)


# Built once: the month-end opens the next cycle for every organization.
_PERIOD_USAGE = select(_USAGE.c.project, _USAGE.c.service, _USAGE.c.quantity, _USAGE.c.unit_price).where(
    _USAGE.c.org_id == bindparam("org_id"), _USAGE.c.period == bindparam("period"))
_INSERT_PENDING = {dialect: insert(_INVOICES).on_conflict_do_nothing(index_elements=["key"]).returning(_INVOICES.c.id)
                   for dialect, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))}


def open_cycle(conn: Connection, org_id: str, period: str, at: datetime) -> None:
    """Open the PENDING invoice of `period` (at most one per organization and period: the business key), its
    running total taken from the usage already recorded for the period. Does nothing when it exists."""
    rows = conn.execute(_PERIOD_USAGE, {"org_id": org_id, "period": period}).all()
    _insert_pending(conn, org_id, period, at, price_usage(rows).usage)


def _insert_pending(conn: Connection, org_id: str, period: str, at: datetime, usage: Decimal) -> None:
    invoice_id = conn.execute(_INSERT_PENDING[conn.dialect.name], dict(
        key=cloud_invoice_key(org_id, period), org_id=org_id, kind="cloud", period=period,
        status=InvoiceStatus.PENDING, currency=CLOUD_CURRENCY, created_at=at, billing_mode=BillingMode.CARD,
        credits_applied=ZERO, invoiced=ZERO, **_running(usage))).scalar()
    if invoice_id is not None:
        conn.execute(_SET_NUMBER, {"invoice_id": invoice_id, "number": invoice_number(period, invoice_id)})


def add_usage(conn: Connection, org_id: str, lines: Iterable[tuple[str, Sequence]], current_period: str,
              at: datetime) -> None:
    """Add newly recorded usage, given as (period, (project, service, quantity, unit_price)), to the running totals
    of their periods' PENDING invoices. The cycle under way is opened if need be; a closed period keeps its invoice
    as settled, and a later one is opened when its cycle begins."""
    by_period: dict[str, list[Sequence]] = {}
    for period, row in lines:
        by_period.setdefault(period, []).append(row)
    for period, rows in sorted(by_period.items()):
        added = price_usage(rows).usage
        query = select(_INVOICES.c.id, _INVOICES.c.status, _INVOICES.c.usage).where(
            _INVOICES.c.key == cloud_invoice_key(org_id, period))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # concurrent batches of the same organization add up, one at a time
        found = conn.execute(query).first()
        if found is None:
            if period == current_period:
                open_cycle(conn, org_id, period, at)  # counts the lines just inserted, these included
            continue
        if found.status == InvoiceStatus.PENDING:
            conn.execute(update(_INVOICES).where(_INVOICES.c.id == found.id).values(**_running(found.usage + added)))


# I3: a line whose (organization, key) is already stored is skipped by the database itself (ON CONFLICT DO NOTHING),
# so a re-sent or overlapping batch is recorded, and totalled, once; RETURNING names the lines actually inserted.
_USAGE_COLUMNS = ("period", "project", "deployment", "service", "sku", "start_date", "end_date", "quantity", "unit",
                  "unit_price", "key")
_INSERTED = (_USAGE.c.period, _USAGE.c.project, _USAGE.c.service, _USAGE.c.quantity, _USAGE.c.unit_price,
             _USAGE.c.start_date)
# SQLite: one executemany (SQLAlchemy sends it as multi-row VALUES pages).
_INSERT_USAGE_SQLITE = sqlite_insert(_USAGE).on_conflict_do_nothing(index_elements=["org_id", "key"]).returning(
    *_INSERTED)
# PostgreSQL: the lines are COPYed into a temporary table of this connection (COPY is PostgreSQL's fastest way in;
# psycopg formats its rows in C), then moved by one INSERT ... SELECT ... ON CONFLICT DO NOTHING in key order. A
# statement with one array parameter per column spent most of a 5,000-line batch formatting the arrays as text.
# `ord` keeps the first of two lines with one key; the table empties itself at each commit.
_BATCH_TABLE = ("CREATE TEMPORARY TABLE IF NOT EXISTS usage_batch (ord integer, period varchar, project varchar, "
                "deployment varchar, service varchar, sku varchar, start_date date, end_date date, quantity numeric, "
                "unit varchar, unit_price numeric, key varchar) ON COMMIT DELETE ROWS")
_COPY_BATCH = f"COPY usage_batch (ord, {', '.join(_USAGE_COLUMNS)}) FROM STDIN"
_MOVE_BATCH = (f"INSERT INTO usage_lines (org_id, {', '.join(_USAGE_COLUMNS)}) "
               f"SELECT %s, {', '.join(_USAGE_COLUMNS)} FROM usage_batch ORDER BY key COLLATE \"C\", ord "
               "ON CONFLICT (org_id, key) DO NOTHING "
               "RETURNING period, project, service, quantity, unit_price, start_date")


def _insert_postgresql(conn: Connection, org_id: str, lines: Sequence[dict]) -> list[Sequence]:
    driver = conn.connection.driver_connection  # psycopg's, inside this Connection's transaction
    with driver.cursor() as cur:
        cur.execute(_BATCH_TABLE)
        cur.execute("TRUNCATE usage_batch")  # an earlier statement of this transaction may have left lines
        with cur.copy(_COPY_BATCH) as copy:
            for ord_, line in enumerate(lines):
                copy.write_row((ord_, line["period"], line["project"], line["deployment"], line["service"],
                                line["sku"], line["start_date"], line["end_date"], line["quantity"], line["unit"],
                                line["unit_price"], line["key"]))
        cur.execute(_MOVE_BATCH, (org_id,))
        return cur.fetchall()


def record_usage_lines(conn: Connection, org_id: str, lines: Sequence[dict], current_period: str,
                       at: datetime) -> list[Sequence]:
    """Insert rated usage lines of one organization (each a dict of usage_lines' columns, `period` included) and add
    the ones actually inserted to their periods' running totals (G0). Returns the inserted lines as (period, project,
    service, quantity, unit_price, start_date); a line whose key is already stored is not among them. Lines are
    taken in key order, so two overlapping batches lock their keys in the same order (no deadlock on PostgreSQL);
    within a batch, the first of two lines with one key is kept."""
    if not lines:
        return []
    if conn.dialect.name == "postgresql":
        inserted = _insert_postgresql(conn, org_id, lines)  # ordered by the database
    else:
        ordered = sorted(lines, key=lambda line: (line["key"] is None, line["key"] or ""))
        inserted = conn.execute(_INSERT_USAGE_SQLITE, [{**line, "org_id": org_id} for line in ordered]).all()
    add_usage(conn, org_id, [(row[0], row[1:5]) for row in inserted], current_period, at)
    return inserted
