"""Benchmark: the invoice pages and downloads on long invoices (SPEC G2, G4).

    .venv/bin/python -m bench.pages [--lines 100000] [--csv-lines 1000000] [--repeat 3]

Each figure is printed beside a baseline measured in the same run, on the same rows (nothing asserts on time):

1. The first HTML page of an invoice with --lines usage lines (running total, the chart data, both summaries,
   Payment Details and the first 100 Usage Details lines; the charts are their own requests), through the app
   (a signed-in member's GET, in process), beside WeasyPrint rendering a bare HTML table of the same 100 rows.
2. The PDF of that invoice (every section, both charts as SVG, the first 1,000 usage lines), beside WeasyPrint
   rendering a bare HTML table of the same 1,000 rows.
3. The usage-details CSV of an invoice with --csv-lines lines, streamed by services.documents.usage_csv (the
   route's generator: a server-side cursor, 10,000 rows a batch), beside PostgreSQL's own COPY (SELECT the same
   columns, formatted the same way) TO STDOUT read by psycopg; lines per second and the ratio, and the process's
   resident memory sampled at every chunk (its growth over the run shows whether memory stays flat).

The rows live in a fresh PostgreSQL database (BENCH_POSTGRES_ADMIN_URL, default the local server), loaded with
COPY, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import httpx
import psycopg
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables)
from api.app import create_app
from api.pages import PagesSettings
from api.routes.downloads import invoice_pdf
from services import documents, invoices, signin
from services.client import BillingClient
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import BillingProfile, Invoice, InvoiceTaxLine, Organization, OrgMember

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AT = datetime(2027, 2, 1, tzinfo=timezone.utc)
SERVICES = ("Atlas Dedicated", "Atlas Backup", "Atlas Data Transfer", "Atlas Search", "App Services")
COPY_SQL = ("COPY (SELECT project, coalesce(deployment, ''), service, sku, start_date::text, end_date::text, "
            "trim_scale(quantity)::text, unit, trim_scale(unit_price)::text, round(amount, 2)::text, 'USD' "
            "FROM invoice_lines WHERE invoice_id = {id} ORDER BY position) TO STDOUT WITH (FORMAT csv, HEADER)")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def create_database() -> tuple[str, str]:
    name = f"bench_pages_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(db: Database, url: str, lines_by_period: dict[str, int]) -> dict[str, Invoice]:
    with db.session() as s:
        s.add(Organization(id="bench", name="Bench Ltd", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
        s.flush()
        s.add(OrgMember(org_id="bench", email="owner@bench.test", role="ORG_OWNER"))
        s.add(BillingProfile(org_id="bench", country="IE", state="Dublin", city="Dublin", address_line1="1 Quay",
                             postal_code="D02", company_name="Bench Ltd", updated_at=AT))
    made = {}
    for period, count in lines_by_period.items():
        start = date.fromisoformat(f"{period}-01")
        rows = []
        usage = Decimal(0)
        for i in range(count):
            quantity, price = Decimal(1 + i % 720), Decimal(5 + i % 40) / 100
            amount = quantity * price  # two places already: no rounding needed
            usage += amount
            rows.append((i, f"project-{i % 12}", f"Cluster{i % 8}", SERVICES[i % 5], f"SKU_{i % 37}", start, start,
                         quantity, "hours", price, amount))
        tax = (usage * Decimal("0.23")).quantize(Decimal("0.01"))
        with db.session() as s:
            invoice = Invoice(key=f"bench:{period}:cloud", org_id="bench", kind="cloud", period=period,
                              status="CLOSED", currency="USD", usage=usage, billed_usage=usage, tax=tax,
                              total=usage + tax, amount_due=usage + tax, created_at=AT)
            s.add(invoice)
            s.flush()
            invoice.number = f"INV-{period.replace('-', '')}-{invoice.id:06d}"
            s.add(InvoiceTaxLine(invoice_id=invoice.id, position=0, name="VAT", rate=Decimal("0.23"), amount=tax))
            s.add(invoice)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
            with conn.cursor().copy("COPY invoice_lines (invoice_id, position, project, deployment, service, sku, "
                                    "start_date, end_date, quantity, unit, unit_price, amount) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((invoice.id,) + row)
        made[period] = invoice
    return made


def bare_table(rows) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{value}</td>" for value in (
        f"{r.start_date} – {r.end_date}", r.project, r.deployment or "", r.service, r.sku, r.quantity, r.unit_price,
        r.amount)) + "</tr>" for r in rows)
    return f"<!doctype html><html><body><table>{cells}</table></body></html>"


def best(samples: list[float]) -> str:
    return f"{min(samples) * 1000:8.1f} ms (median {statistics.median(samples) * 1000:.1f} ms)"


async def measure(args: argparse.Namespace) -> None:
    name, url = create_database()
    db = Database(url)
    try:
        SQLModel.metadata.create_all(db.engine)
        t0 = time.perf_counter()
        made = seed(db, url, {"2027-01": args.lines, "2026-12": args.csv_lines})
        print(f"seeded {args.lines:,} + {args.csv_lines:,} invoice lines in {time.perf_counter() - t0:.1f} s")
        page_invoice, csv_invoice = made["2027-01"], made["2026-12"]

        # 1. The first HTML page, through the app, as a signed-in member asks for it.
        async def clock() -> datetime:
            return AT
        billing = BillingClient(None, db, SandboxGateway(db), clock=clock)  # type: ignore[arg-type]
        app = create_app(billing, pages_settings=PagesSettings(secret=b"bench-secret-bench-secret-bench!!"))
        token = signin.issue_link_token(db, "bench", "owner@bench.test", datetime.now(timezone.utc))
        session_id, _ = signin.redeem(db, token, datetime.now(timezone.utc))
        from api.pages.session import SESSION_COOKIE, signed
        cookies = {SESSION_COOKIE: signed(b"bench-secret-bench-secret-bench!!", session_id)}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                     cookies=cookies) as client:
            html_times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                response = await client.get(f"/orgs/bench/invoices/{page_invoice.number}")
                html_times.append(time.perf_counter() - t)
                assert response.status_code == 200 and f"of {args.lines:,}" in response.text
        detail = invoices.invoice_detail(db, "bench", page_invoice.number, usage_limit=1000)
        bare_100, bare_1000 = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            documents.pdf_from_html(bare_table(detail.usage_details[:100]))
            bare_100.append(time.perf_counter() - t)
        print(f"\n1. first HTML page of an invoice with {args.lines:,} lines (100 usage lines shown)")
        print(f"   the page (GET, in process)                   {best(html_times)}")
        print(f"   WeasyPrint, bare table of the same 100 rows  {best(bare_100)}")

        # 2. The PDF: every section, both charts, the first 1,000 lines.
        pdf_times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            pdf = invoice_pdf(db, "bench", page_invoice.number)
            pdf_times.append(time.perf_counter() - t)
        for _ in range(args.repeat):
            t = time.perf_counter()
            documents.pdf_from_html(bare_table(detail.usage_details))
            bare_1000.append(time.perf_counter() - t)
        print(f"\n2. PDF of that invoice (summaries, both charts, first 1,000 lines; {len(pdf) / 1024:.0f} KiB)")
        print(f"   the invoice PDF                               {best(pdf_times)}")
        print(f"   WeasyPrint, bare table of the same 1,000 rows {best(bare_1000)}")
        print(f"   ratio {min(pdf_times) / min(bare_1000):.2f}x the bare table's time")

        # 3. The usage CSV of --csv-lines lines, streamed, beside COPY ... TO STDOUT.
        source = invoices.lines_source(db, invoices.find_invoice(db, "bench", csv_invoice.number))
        stream_times, copy_times, growth = [], [], []
        size = 0
        for _ in range(args.repeat):
            start_rss = peak = rss_mib()
            t = time.perf_counter()
            size = lines = 0
            for chunk in documents.usage_csv(db, source):
                size += len(chunk)
                lines += chunk.count(b"\n")
                peak = max(peak, rss_mib())
            stream_times.append(time.perf_counter() - t)
            growth.append(peak - start_rss)
            assert lines == args.csv_lines + 1
        raw_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        copied = 0
        for _ in range(args.repeat):
            with psycopg.connect(raw_url) as conn:
                t = time.perf_counter()
                copied = 0
                with conn.cursor().copy(COPY_SQL.format(id=source)) as copy:
                    for block in copy:
                        copied += len(block)
                copy_times.append(time.perf_counter() - t)
        n = args.csv_lines
        print(f"\n3. usage-details CSV of {n:,} lines ({size / 2**20:.1f} MiB streamed; COPY {copied / 2**20:.1f} MiB)")
        print(f"   services.documents.usage_csv   {best(stream_times)}  {n / min(stream_times):>12,.0f} lines/s")
        print(f"   COPY ... TO STDOUT (psycopg)   {best(copy_times)}  {n / min(copy_times):>12,.0f} lines/s")
        print(f"   ratio {min(copy_times) / min(stream_times):.2f}x COPY's throughput; resident memory grew "
              f"{max(growth):.1f} MiB at most while streaming (process at {rss_mib():.0f} MiB)")
    finally:
        db.dispose()
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--csv-lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
