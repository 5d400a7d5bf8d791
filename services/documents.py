"""An invoice as documents (SPEC G2, G4): its two charts as SVG (matplotlib), its PDF (WeasyPrint from HTML the
caller renders), and its CSVs streamed from the database a batch at a time, never all lines in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

import matplotlib

matplotlib.use("Agg")  # no display: charts are drawn to SVG only

from matplotlib import pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.figure import Figure  # noqa: E402
from sqlalchemy import text  # noqa: E402

from billing.money import format_amount  # noqa: E402
from services.invoices import InvoiceDetail  # noqa: E402
from store.db import Database  # noqa: E402

USAGE_CURRENCY = "USD"  # usage lines are priced in USD (M2)
USAGE_COLUMNS = ("project", "deployment", "service", "sku", "start_date", "end_date", "quantity", "unit",
                 "unit_price", "amount", "currency")
CSV_BATCH = 10_000
FONT = ["DejaVu Sans", "Liberation Sans", "sans-serif"]  # Debian's fonts-dejavu-core / fonts-liberation2
PALETTE = ["#1f5f8b", "#3f9c6d", "#c7782a", "#8a4f9e", "#b8403a", "#4d7ea8", "#7a8b2f", "#a0616a", "#5b5b5b"]

plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "billing-invoice-charts", "font.family": FONT,
                     "font.size": 10})


# ---------------------------------------------------------------- charts (G2: total usage by service, by deployment)

def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def _empty(title: str) -> str:
    fig = plt.figure(figsize=(6.4, 1.6))
    fig.text(0.5, 0.5, "No usage recorded in this period", ha="center", va="center", color="#444444")
    fig.suptitle(title, fontsize=11, fontweight="bold")
    return _svg(fig)


def usage_by_service_chart(sums: dict[str, Decimal], title: str = "Total usage by service (USD)") -> str:
    """A horizontal bar per service, largest on top, each labelled with its amount."""
    items = sorted(((name, amount) for name, amount in sums.items() if amount), key=lambda kv: kv[1])
    if not items:
        return _empty(title)
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.42 * len(items)))
    names = [name for name, _ in items]
    values = [float(amount) for _, amount in items]  # drawing only: the figures printed are the Decimals
    bars = ax.barh(names, values, color=PALETTE[0])
    for bar, (_, amount) in zip(bars, items):
        ax.annotate(f"{format_amount(amount, USAGE_CURRENCY)}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_title(title, fontsize=11, fontweight="bold", loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(0, max(values) * 1.25 if max(values) > 0 else 1)
    ax.tick_params(axis="x", labelsize=8)
    return _svg(fig)


def usage_by_deployment_chart(sums: dict[str, Decimal], title: str = "Usage by deployment (USD)") -> str:
    """The proportion of usage each deployment incurred (a ring), with amounts and shares in the legend."""
    items = sorted(((name, amount) for name, amount in sums.items() if amount > 0), key=lambda kv: -kv[1])
    if not items:
        return _empty(title)
    total = sum(amount for _, amount in items)
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    ax.pie([float(amount) for _, amount in items], colors=PALETTE[:len(items)] * (len(items) // len(PALETTE) + 1),
           startangle=90, counterclock=False, wedgeprops={"width": 0.42, "edgecolor": "white"})
    ax.set_aspect("equal")
    labels = [f"{name}: {format_amount(amount, USAGE_CURRENCY)} ({amount / total * 100:.1f}%)"
              for name, amount in items]
    ax.legend(labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
    ax.set_title(title, fontsize=11, fontweight="bold", loc="left")
    return _svg(fig)


def charts(detail: InvoiceDetail) -> dict[str, str]:
    return {"by_service": usage_by_service_chart(detail.usage_by_service),
            "by_deployment": usage_by_deployment_chart(detail.usage_by_deployment)}


# ---------------------------------------------------------------- PDF

def pdf_from_html(html: str, base_url: str | None = None) -> bytes:
    """The PDF of an HTML document (WeasyPrint; fonts from the system's fontconfig, Debian's font packages)."""
    from weasyprint import HTML  # imported on first use: it loads Pango and its fonts

    return HTML(string=html, base_url=base_url).write_pdf()


# ---------------------------------------------------------------- CSV (G4), streamed

def _plain(value: str | Decimal | None) -> str:
    """A quantity or unit price as stored, without trailing zeros or an exponent ("720", "0.54")."""
    if value is None:
        return ""
    number = Decimal(value).normalize()
    return f"{number:f}"


def _quoted(column: str) -> str:
    """SQL quoting a text column for CSV as the csv module does: in double quotes (doubled inside) only when it holds
    a comma, a quote or a line break."""
    return (f"CASE WHEN {column} ~ '[\",\\r\\n]' THEN '\"' || replace({column}, '\"', '\"\"') || '\"' "
            f"ELSE {column} END")


_PG_LINE = ("SELECT concat_ws(',', " + ", ".join([
    _quoted("project"), _quoted("coalesce(deployment, '')"), _quoted("service"), _quoted("sku"), "start_date::text",
    "end_date::text", "trim_scale(quantity)::text", _quoted("unit"), "trim_scale(unit_price)::text",
    "round(amount, 2)::text", "'USD'"]) + ") FROM invoice_lines WHERE invoice_id = %s ORDER BY position")


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _blocks(db: Database, invoice_id: int, batch: int, prefix: tuple = ()) -> Iterator[str]:
    """The invoice's lines as CSV text in position order, `batch` lines a block, each led by the `prefix` columns.
    PostgreSQL: a server-side cursor, the database formatting each line (dates ISO, amounts with 2 places,
    quantities without trailing zeros, text quoted where needed), so a million lines cost a million strings, not
    eleven million. SQLite (which reads rows lazily; its money columns are exact text): the csv module formats."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            lead = _csv_line(prefix).rstrip("\n") + "," if prefix else ""
            raw = conn.connection.driver_connection
            with raw.cursor(name=f"usage_csv_{invoice_id}") as cursor:
                cursor.itersize = batch
                cursor.execute(_PG_LINE, (invoice_id,))
                while rows := cursor.fetchmany(batch):
                    yield "".join(f"{lead}{row[0]}\n" for row in rows)
            conn.rollback()
            return
        result = conn.execution_options(stream_results=True).execute(text(
            "SELECT project, deployment, service, sku, start_date, end_date, quantity, unit, unit_price, amount "
            "FROM invoice_lines WHERE invoice_id = :invoice ORDER BY position"), {"invoice": invoice_id})
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for part in result.partitions(batch):
            writer.writerows(prefix + (p, d or "", sv, sku, str(start), str(end), _plain(q), u, _plain(up),
                                       format_amount(Decimal(a), USAGE_CURRENCY), USAGE_CURRENCY)
                             for p, d, sv, sku, start, end, q, u, up, a in part)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()


def _chunks(header: tuple[str, ...], blocks: Iterator[str], footer: list[tuple] = ()) -> Iterator[bytes]:
    yield _csv_line(header).encode()
    for block in blocks:
        yield block.encode()
    if footer:
        yield "".join(_csv_line(row) for row in footer).encode()


def usage_csv(db: Database, lines_invoice_id: int, batch: int = CSV_BATCH) -> Iterator[bytes]:
    """G2/G4 Usage Details as CSV: every line item (dates used and billed, quantity, project, unit price, amount);
    `lines_invoice_id` is services.invoices.lines_source of the invoice."""
    return _chunks(USAGE_COLUMNS, _blocks(db, lines_invoice_id, batch))


INVOICE_COLUMNS = ("invoice", "period", "status", "record", "description") + USAGE_COLUMNS


def invoice_csv(db: Database, detail: InvoiceDetail, lines_invoice_id: int, batch: int = CSV_BATCH) -> Iterator[bytes]:
    """G4: the invoice as CSV: a `line` record per usage line, then its figures as records of their own (usage and
    billed usage in USD; each tax line, tax, total, credits applied, forgiven and amount due in the invoice's
    currency)."""
    head = (detail.number or "", detail.period, detail.status.value)
    blank = ("",) * (len(USAGE_COLUMNS) - 2)
    footer = [head + ("usage", "Usage") + blank + (format_amount(detail.usage, USAGE_CURRENCY), USAGE_CURRENCY),
              head + ("billed_usage", "Billed usage") + blank
              + (format_amount(detail.billed_usage, USAGE_CURRENCY), USAGE_CURRENCY)]
    for tax in detail.tax_lines:
        footer.append(head + ("tax", f"{tax.name} {tax.rate * 100:.2f}%") + blank
                      + (format_amount(tax.amount, detail.currency), detail.currency))
    for record, label, amount in (("tax_total", "Tax", detail.tax), ("total", "Total", detail.total),
                                  ("credits_applied", "Credits applied", detail.credits_applied),
                                  ("forgiven", "Forgiven", detail.forgiven),
                                  ("amount_due", "Amount due", detail.amount_due)):
        footer.append(head + (record, label) + blank + (format_amount(amount, detail.currency), detail.currency))
    return _chunks(INVOICE_COLUMNS, _blocks(db, lines_invoice_id, batch, prefix=head + ("line", "")), footer=footer)
