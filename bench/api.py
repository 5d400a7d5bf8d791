"""Benchmark: the HTTP API over real HTTP (uvicorn), each figure beside a baseline measured in the same run.

    .venv/bin/python -m bench.api [--requests 400] [--batches 10] [--payments 30] [--skip-postgres]

Run on the embedded default (a fresh SQLite file) and then on a fresh PostgreSQL database (BENCH_POSTGRES_ADMIN_URL,
default postgresql://postgres@127.0.0.1:5432/postgres). In this process: a Temporal dev server (the `temporal`
binary, in memory), the real worker, a local SMTP server that accepts everything, and uvicorn serving the API and a
bare FastAPI app on their own event loop in a thread; the load comes from httpx on the main loop.

(a) GET /v1/invoices?limit=200 for an organization with 120 invoices (one page: all 120), p50 and p99 at concurrency
    1 and 16, beside a bare FastAPI endpoint that runs the same single SQL query (the organization's invoices in the
    period, newest first) and returns its rows. Target: API p50 <= 1.5x bare.
(b) POST /v1/usage: batches of 5,000 keyed lines (bodies encoded before timing) in lines per second, beside
    PostgreSQL COPY of the same lines into usage_lines. Target: >= 0.3x COPY.
(c) A payment through the API, trigger to PAID: POST /v1/invoices/{number}/pay-now on a CLOSED invoice answered
    with the payment PAID, p50, beside BillingClient.pay_now on the same kind of invoice.

A measurement, not a test: nothing asserts on time. It does check what it measures: every page lists 120 invoices,
every batch is recorded in full, every payment ends PAID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import text
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.email import SmtpSettings
from api.app import create_app
from bench.payment import AcceptingHandler, dev_server_output_on_stderr, percentile
from billing.invoicing import invoice_number, period_of
from billing.logging import configure_logging
from billing.permissions import ApiRole
from billing.profiles import OrganizationIn
from contracts.flows import SEARCH_ATTRIBUTES
from services import apikeys
from services.client import BillingClient
from starter.processes import binary, free_port
from store import migrate
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import Invoice, Organization
from worker import build_worker, install_runtime

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
INVOICES = 120
LINES_PER_BATCH = 5000
USAGE_COLUMNS = ("org_id", "period", "project", "deployment", "service", "sku", "start_date", "end_date", "quantity",
                 "unit", "unit_price", "key")
# The single query behind GET /v1/invoices (services.invoices.list_invoices), run bare.
BARE_QUERY = text("SELECT number, kind, status, period, currency, usage, billed_usage, tax, total, amount_due, "
                  "created_at, paid_at FROM invoices WHERE org_id = :org AND created_at >= :start "
                  "AND created_at < :end ORDER BY id DESC LIMIT 201")


@dataclass
class Options:
    requests: int = 400
    warmup: int = 40
    batches: int = 10
    payments: int = 30
    skip_postgres: bool = False
    log_level: str = "WARNING"


# --- the servers ----------------------------------------------------------------------------------------------


def bare_app(db: Database) -> FastAPI:
    """One route: the invoices query and its rows, nothing else (no key, no scoping, no models)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/bare/invoices/{org}")
    def invoices(org: str) -> list[dict]:  # a threadpool route, as the API's database work is
        with db.engine.connect() as conn:
            start = datetime(2000, 1, 1, tzinfo=timezone.utc)
            end = datetime.now(timezone.utc) + timedelta(days=1)
            rows = conn.execute(BARE_QUERY, {"org": org, "start": start, "end": end}).mappings().all()
        return [{k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows]

    return app


class Servers(threading.Thread):
    """uvicorn serving the API and the bare app, on an event loop of their own."""

    def __init__(self, api: FastAPI, bare: FastAPI) -> None:
        super().__init__(name="uvicorn", daemon=True)
        self.ports = (free_port(), free_port())
        self.servers = [uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                      access_log=False, lifespan="off"))
                        for app, port in zip((api, bare), self.ports)]

    def run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        await asyncio.gather(*(server.serve() for server in self.servers))

    def wait_started(self) -> None:
        deadline = time.monotonic() + 30
        while not all(server.started for server in self.servers):
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        self.join(timeout=10)


# --- seeding --------------------------------------------------------------------------------------------------


def seed_invoices(db: Database, org_id: str) -> None:
    created = datetime.now(timezone.utc) - timedelta(days=INVOICES * 30)
    with db.session() as s:
        s.add(Organization(id=org_id, name=org_id, created_at=created))
        s.flush()
        for i in range(INVOICES):
            day = created + timedelta(days=30 * i + 1)
            amount = Decimal(f"{100 + i}.{i % 100:02d}")
            status = "PAID" if i % 3 else "FREE"
            invoice = Invoice(key=f"{org_id}:{i}:cloud", org_id=org_id, kind="cloud", period=period_of(day.date()),
                              status=status, currency="USD", usage=amount, billed_usage=amount, tax=Decimal("0"),
                              total=amount, amount_due=Decimal("0"), created_at=day,
                              paid_at=day if status == "PAID" else None)
            s.add(invoice)
            s.flush()
            invoice.number = f"INV-B{i:03d}-{invoice.id:06d}"


@dataclass(frozen=True)
class Target:
    org_id: str
    number: str


async def seed_payments(billing: BillingClient, db: Database, count: int, run_id: str) -> list[Target]:
    """`count` organizations paying by card 4242..., each with a CLOSED cloud invoice of last month."""
    exp = f"12/{(date.today().year + 5) % 100:02d}"
    org_ids = [f"pay-{run_id}-{i:04d}" for i in range(count)]
    gate = asyncio.Semaphore(8)

    async def create(i: int, org_id: str) -> None:
        org = OrganizationIn.model_validate({
            "id": org_id, "owners": [f"owner{i}@bench.example.com"],
            "billing_profile": {"country": "US", "address_line1": "1 Main Street", "city": "Springfield",
                                "state": "IL", "postal_code": "62701"},
            "payment_method": {"type": "card", "number": "4242424242424242", "exp": exp, "cvc": "123",
                               "name": f"Bench {i}"}})
        async with gate:
            await billing.create_organization(org)

    await asyncio.gather(*(create(i, org_id) for i, org_id in enumerate(org_ids)))
    now = datetime.now(timezone.utc)
    period = period_of(now.date().replace(day=1) - timedelta(days=1))

    def insert() -> list[Target]:
        targets = []
        with db.session() as s:
            for i, org_id in enumerate(org_ids):
                amount = Decimal(f"{10 + i % 90}.{i % 100:02d}")
                invoice = Invoice(key=f"{org_id}:{period}:cloud", org_id=org_id, kind="cloud", period=period,
                                  status="CLOSED", currency="USD", usage=amount, billed_usage=amount,
                                  tax=Decimal("0"), total=amount, amount_due=amount, created_at=now)
                s.add(invoice)
                s.flush()
                invoice.number = invoice_number(period, invoice.id)
                targets.append(Target(org_id=org_id, number=invoice.number))
        return targets

    return await asyncio.to_thread(insert)


def usage_lines(prefix: str, count: int, day: date) -> list[dict]:
    return [{"key": f"{prefix}-{i}", "project": f"p{i % 5}", "deployment": f"cluster{i % 7}",
             "service": "Atlas Dedicated", "sku": "M10", "start_date": day.isoformat(), "end_date": day.isoformat(),
             "quantity": f"{1 + i % 24}.25", "unit": "hours", "unit_price": "0.08"} for i in range(count)]


# --- measuring ------------------------------------------------------------------------------------------------


async def latencies(client: httpx.AsyncClient, url: str, headers: dict, count: int, concurrency: int,
                    check) -> list[float]:
    samples: list[float] = []
    remaining = count

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            response = await client.get(url, headers=headers)
            samples.append((time.perf_counter() - start) * 1000)
            check(response)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return samples


def _api_page(response: httpx.Response) -> None:
    if response.status_code != 200 or len(response.json()["invoices"]) != INVOICES:
        raise RuntimeError(f"GET /v1/invoices answered {response.status_code}: {response.text[:200]}")


def _bare_rows(response: httpx.Response) -> None:
    if response.status_code != 200 or len(response.json()) != INVOICES:
        raise RuntimeError(f"bare endpoint answered {response.status_code}: {response.text[:200]}")


def copy_lines(url: str, org_id: str, lines: list[dict], period: str) -> float:
    """PostgreSQL COPY of the lines into usage_lines, in one transaction; seconds."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn:
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY usage_lines ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy:
            for line in lines:
                copy.write_row((org_id, period, line["project"], line["deployment"], line["service"], line["sku"],
                                line["start_date"], line["end_date"], line["quantity"], line["unit"],
                                line["unit_price"], line["key"]))
        conn.commit()
        return time.perf_counter() - start


def row(label: str, values: Sequence[float]) -> str:
    return f"    {label:<30}{percentile(values, 50):>9.2f}{percentile(values, 99):>9.2f}"


async def run_database(opts: Options, url: str, label: str) -> None:
    migrate.upgrade(url)
    db = Database(url)
    gateway = SandboxGateway(db)
    smtp_handler = AcceptingHandler()
    controller = Controller(smtp_handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    run = uuid.uuid4().hex[:6]
    try:
        with dev_server_output_on_stderr():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=binary("temporal"), search_attributes=SEARCH_ATTRIBUTES,
                data_converter=pydantic_data_converter, dev_server_extra_args=["--log-level", "error"])
        async with env, build_worker(env.client, db, gateway, SmtpSettings(host="127.0.0.1", port=controller.port)):
            billing = BillingClient(env.client, db, gateway)
            org = f"bench-{run}"
            await asyncio.to_thread(seed_invoices, db, org)
            key = apikeys.create_key(db, ApiRole.ORGANIZATION_OWNER, org_id=org, name="bench").secret
            headers = {"Authorization": f"Bearer {key}"}
            servers = Servers(create_app(billing), bare_app(db))
            servers.start()
            servers.wait_started()
            api_url, bare_url = (f"http://127.0.0.1:{port}" for port in servers.ports)
            print(f"\n{label}")
            try:
                async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=32)) as client:
                    await part_a(opts, client, api_url, bare_url, org, headers)
                    await part_b(opts, client, api_url, db, url, org, headers, label)
                    await part_c(opts, client, api_url, billing, db, run)
            finally:
                servers.stop()
    finally:
        controller.stop()
        db.dispose()


async def part_a(opts, client, api_url, bare_url, org, headers) -> None:
    api = f"{api_url}/v1/invoices?limit=200&from=2000-01-01"
    bare = f"{bare_url}/bare/invoices/{org}"
    await latencies(client, api, headers, opts.warmup, 4, _api_page)
    await latencies(client, bare, {}, opts.warmup, 4, _bare_rows)
    print(f"  (a) GET /v1/invoices, {INVOICES} invoices, {opts.requests} requests per row (ms)      p50      p99")
    for concurrency in (1, 16):
        # Interleaved in halves, so that a slow moment of the machine falls on both.
        api_ms, bare_ms = [], []
        for _ in range(2):
            api_ms += await latencies(client, api, headers, opts.requests // 2, concurrency, _api_page)
            bare_ms += await latencies(client, bare, {}, opts.requests // 2, concurrency, _bare_rows)
        print(row(f"API, concurrency {concurrency}", api_ms))
        print(row(f"bare, concurrency {concurrency}", bare_ms))
        print(f"    API p50 / bare p50            {percentile(api_ms, 50) / percentile(bare_ms, 50):>9.2f}x"
              "   (target <= 1.5x)")


async def part_b(opts, client, api_url, db, url, org, headers, label) -> None:
    today = datetime.now(timezone.utc).date()
    bodies = [json.dumps({"lines": usage_lines(f"b{n}", LINES_PER_BATCH, today)}).encode()
              for n in range(opts.batches + 1)]
    post_headers = {**headers, "Content-Type": "application/json"}
    warm = await client.post(f"{api_url}/v1/usage", content=bodies[0], headers=post_headers)
    assert warm.json()["recorded"] == LINES_PER_BATCH, warm.text
    start = time.perf_counter()
    for body in bodies[1:]:
        response = await client.post(f"{api_url}/v1/usage", content=body, headers=post_headers)
        if response.status_code != 200 or response.json()["recorded"] != LINES_PER_BATCH:
            raise RuntimeError(f"POST /v1/usage answered {response.status_code}: {response.text[:200]}")
    seconds = time.perf_counter() - start
    lines = opts.batches * LINES_PER_BATCH
    api_rate = lines / seconds
    resent = await client.post(f"{api_url}/v1/usage", content=bodies[1], headers=post_headers)
    assert resent.json() == {"recorded": 0, "duplicates": LINES_PER_BATCH}, resent.text
    print(f"  (b) POST /v1/usage, {opts.batches} batches of {LINES_PER_BATCH:,} lines")
    print(f"    API                           {api_rate:>9,.0f} lines/s ({seconds * 1000 / opts.batches:.0f} ms per "
          "batch)")
    if url.startswith("postgresql"):
        copy_org = f"{org}-copy"
        with db.session() as s:
            s.add(Organization(id=copy_org, name=copy_org, created_at=datetime.now(timezone.utc)))
        copy_seconds = 0.0
        for n in range(1, opts.batches + 1):
            copy_seconds += await asyncio.to_thread(copy_lines, url, copy_org,
                                                    usage_lines(f"b{n}", LINES_PER_BATCH, today), period_of(today))
        copy_rate = lines / copy_seconds
        print(f"    PostgreSQL COPY               {copy_rate:>9,.0f} lines/s ({copy_seconds * 1000 / opts.batches:.0f}"
              " ms per batch)")
        print(f"    API / COPY                    {api_rate / copy_rate:>9.2f}x   (target >= 0.3x)")
    else:
        print("    (COPY is PostgreSQL's: see the PostgreSQL run for the baseline)")


async def part_c(opts, client, api_url, billing, db, run) -> None:
    count = 2 * (opts.payments + 3)
    targets = await seed_payments(billing, db, count, f"{run}p")
    keys = {t.org_id: apikeys.create_key(db, ApiRole.ORGANIZATION_OWNER, org_id=t.org_id, name="bench").secret
            for t in targets}
    api_targets, client_targets = targets[::2], targets[1::2]

    async def through_api(target) -> float:
        start = time.perf_counter()
        response = await client.post(f"{api_url}/v1/invoices/{target.number}/pay-now",
                                     headers={"Authorization": f"Bearer {keys[target.org_id]}"})
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200 or response.json()["status"] != "PAID":
            raise RuntimeError(f"pay-now answered {response.status_code}: {response.text[:200]}")
        return elapsed

    async def through_client(target) -> float:
        start = time.perf_counter()
        state = await billing.pay_now(target.org_id, target.number)
        elapsed = (time.perf_counter() - start) * 1000
        if state.status != "PAID":
            raise RuntimeError(f"pay_now ended {state.status}")
        return elapsed

    api_ms, client_ms = [], []
    for i, (a, c) in enumerate(zip(api_targets, client_targets)):  # interleaved, one at a time
        api_ms.append(await through_api(a))
        client_ms.append(await through_client(c))
    api_ms, client_ms = api_ms[3:], client_ms[3:]  # the first three warm up
    print(f"  (c) payment trigger -> PAID (PAY NOW on a CLOSED invoice), {len(api_ms)} each (ms)   p50      p99")
    print(row("through the API", api_ms))
    print(row("through BillingClient", client_ms))
    print(f"    API p50 - BillingClient p50   {percentile(api_ms, 50) - percentile(client_ms, 50):>9.2f} ms")


@contextlib.contextmanager
def postgres_database() -> str:
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench(opts: Options) -> None:
    configure_logging(opts.log_level)
    install_runtime()
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    print(f"API benchmark: uvicorn on 127.0.0.1 (API and bare app in one thread), load from httpx in this process; "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        await run_database(opts, f"sqlite:///{Path(tmp) / 'store.db'}", "SQLite (embedded default, a fresh file)")
    if not opts.skip_postgres:
        with postgres_database() as url:
            await run_database(opts, url, "PostgreSQL (a fresh database on 127.0.0.1:5432)")


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="GET requests per row of (a) (default 400)")
    parser.add_argument("--batches", type=int, default=10, help="5,000-line batches in (b) (default 10)")
    parser.add_argument("--payments", type=int, default=30, help="payments each way in (c) (default 30)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    return Options(requests=args.requests, batches=args.batches, payments=args.payments,
                   skip_postgres=args.skip_postgres, log_level=args.log_level)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    main()
