"""Benchmark: month-end settlement of many organizations on the dev server, and a million usage lines invoiced.

    .venv/bin/python -m bench.settlement [--orgs 10000] [--lines 1000000] [--bare 2000] [--worker KEY=VALUE ...]
                                         [--e2e-threads 4] [--skip-temporal] [--skip-domain] [--skip-e2e]

Three parts, each printing figures beside a baseline measured in the same run (nothing asserts on time):

1. Temporal. A fresh PostgreSQL database with --orgs organizations (bulk-loaded: members, a billing profile in a
   mix of countries, a few usage lines and a credit line that covers them, so settlement leaves nothing to charge
   and starts no payment workflow), the real worker (worker.build_worker) in this process, the dev server in memory.
   `BillingClient.run_month_end(period)` starts every settlement; the rate is organizations settled per second until
   the last settlement result is in. Beside it: a bare workflow of three no-op activities, started and awaited the
   same way, on a worker with the same settings (--bare of them, a sample when fewer than --orgs). --worker runs the
   settlements on a Worker built here instead, to try settings that worker.build_worker does not give.
2. The domain on --lines usage lines in memory: price every line, sum by project and service, the subscription
   rule, tax, credits (billing's own functions), beside a bare loop that only does round_money(quantity * price).
3. End to end on --lines usage rows in PostgreSQL (1,000 per organization): the settlement activity
   (settle_cloud_invoice: read, price, tax, draw credits, store) for every organization, --e2e-threads at a time
   (default 4; the worker runs up to 8 local activities at once), this process pinned to one core, until every
   invoice and invoice line is stored; beside it, what PostgreSQL alone takes to write that many invoice lines in
   one INSERT ... SELECT (rolled back).

Part 1 first writes the project's bytecode, as `pip install .` does in the image: this machine sets
PYTHONDONTWRITEBYTECODE, and the workflow sandbox imports the workflow's module afresh for every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.worker import Worker

# The sandbox re-imports this module for every workflow run; everything else it needs is imported where used.
with workflow.unsafe.imports_passed_through():
    import psycopg

PERIOD_START = date(2027, 1, 1)
PERIOD = "2027-01"
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_CONCURRENCY = 50  # as activities.starting.SETTLEMENT_START_CONCURRENCY
RESULT_WAITERS = 200
LINES_PER_ORG = 1000

# (country, state): taxed and untaxed, with and without a subdivision that matters (SPEC C1-C3).
ADDRESSES = [("US", "NY"), ("US", "CA"), ("DE", "Berlin"), ("FR", "Paris"), ("GB", "London"), ("IN", "Karnataka"),
             ("CA", "ON"), ("CA", "QC"), ("AU", "NSW"), ("JP", "Tokyo"), ("SG", "Singapore"), ("NL", "Utrecht")]
# (service, sku, unit, unit price, most in a month, decimal places of the quantity)
SKUS = [("Atlas Dedicated", "M10", "hours", Decimal("0.08"), 744, 2),
        ("Atlas Dedicated", "M30", "hours", Decimal("0.54"), 744, 2),
        ("Data Transfer", "XFER-REGION", "GB", Decimal("0.02"), 5_000, 6),
        ("Data Transfer", "XFER-INTERNET", "GB", Decimal("0.09"), 2_000, 6),
        ("Backup", "SNAPSHOT", "GB-days", Decimal("0.000125"), 300_000, 3),
        ("Atlas Search", "S20", "hours", Decimal("0.12"), 744, 2),
        ("Support", "DEVELOPER", "months", Decimal("49.00"), 1, 0)]
PROJECTS = ["web", "api", "etl", "analytics", "staging"]


# --- the bare workflow: three no-op activities (here, not in __main__, so the sandbox accepts it) ----------------


@activity.defn(name="bench_noop")
def noop(step: str) -> str:
    return step


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, org_id: str) -> str:
        for step in ("close", "tax", "finalize"):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        return org_id


# --- local services and databases ------------------------------------------------------------------------------


from bench.payment import AcceptingHandler, dev_server_output_on_stderr  # noqa: E402
from starter.processes import binary, free_port  # noqa: E402


@contextlib.contextmanager
def fresh_database(label: str) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database migrated to head; dropped afterwards. Yields (SQLAlchemy URL, psycopg URL)."""
    from store import migrate

    name = f"bench_settlement_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    plain = f"{base}/{name}"
    try:
        url = plain.replace("postgresql://", "postgresql+psycopg://", 1)
        migrate.upgrade(url)
        yield url, plain
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def org_id(i: int) -> str:
    return f"org-{i:06d}"


def usage_line(rnd: random.Random, i: int) -> tuple[str, str, str, str, str, Decimal, Decimal]:
    """(project, deployment, service, sku, unit, quantity, unit_price) of a plausible usage line."""
    service, sku, unit, price, most, places = SKUS[rnd.randrange(len(SKUS))]
    quantity = Decimal(rnd.randrange(0, most * 10**places + 1)).scaleb(-places)
    return PROJECTS[i % len(PROJECTS)], f"Cluster{i % 3}", service, sku, unit, quantity, price


def seed(plain_url: str, orgs: int, lines_per_org: int, credit: Decimal) -> int:
    """Bulk-load organizations, members, billing profiles, one credit line each and their usage (COPY)."""
    created = "2026-12-01 00:00:00+00"
    start, end = PERIOD_START, date(2027, 1, 31)
    rnd = random.Random(4)
    lines = 0
    with psycopg.connect(plain_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY organizations (id, name, status, created_at) FROM STDIN") as copy:
            copy.write("".join(f"{org_id(i)}\tBench {i}\tACTIVE\t{created}\n" for i in range(orgs)))
        with cur.copy("COPY org_members (org_id, email, role) FROM STDIN") as copy:
            copy.write("".join(f"{org_id(i)}\towner{i}@bench.example.com\tORG_OWNER\n" for i in range(orgs)))
        with cur.copy("COPY billing_profiles (org_id, country, state, city, address_line1, postal_code, "
                      "only_invoice_emails, updated_at) FROM STDIN") as copy:
            copy.write("".join(f"{org_id(i)}\t{ADDRESSES[i % len(ADDRESSES)][0]}\t{ADDRESSES[i % len(ADDRESSES)][1]}"
                               f"\tCity\t1 Main Street\t12345\tf\t{created}\n" for i in range(orgs)))
        with cur.copy("COPY credit_lines (org_id, position, kind, amount, used, currency, start_date, end_date) "
                      "FROM STDIN") as copy:
            copy.write("".join(f"{org_id(i)}\t0\tpromotional\t{credit}\t0\tUSD\t{start}\t2027-12-31\n"
                               for i in range(orgs)))
        with cur.copy("COPY usage_lines (org_id, period, project, deployment, service, sku, start_date, end_date, "
                      "quantity, unit, unit_price) FROM STDIN") as copy:
            for i in range(orgs):
                chunk = []
                for n in range(lines_per_org):
                    project, deployment, service, sku, unit, quantity, price = usage_line(rnd, n)
                    chunk.append(f"{org_id(i)}\t{PERIOD}\t{project}\t{deployment}\t{service}\t{sku}\t{start}\t{end}"
                                 f"\t{quantity}\t{unit}\t{price}\n")
                copy.write("".join(chunk))
                lines += lines_per_org
        conn.commit()
        conn.autocommit = True
        # Settle the bulk load before anything is timed: statistics for the planner, hint bits and the visibility
        # map set now rather than by the first readers, autovacuum left nothing to do, dirty pages written out.
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return lines


def compile_project() -> None:
    """Write the project's bytecode, as `pip install .` does in the image (Dockerfile). Without .pyc files (this
    machine sets PYTHONDONTWRITEBYTECODE) the sandbox compiles a workflow's module from source for every run."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("workflows", "activities", "billing", "starter"):
        compileall.compile_dir(str(root / package), quiet=1)


def pin_to_one_core() -> Callable[[], None]:
    """Run on core 0 only; returns how to undo it."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    return lambda: os.sched_setaffinity(0, before)


# --- part 1: Temporal ------------------------------------------------------------------------------------------


@dataclass
class Options:
    orgs: int = 10_000
    lines: int = 1_000_000
    bare: int = 2_000
    org_lines: int = 3
    skip_temporal: bool = False
    skip_domain: bool = False
    skip_e2e: bool = False
    rounds: int = 3
    e2e_threads: int = 4
    worker: dict[str, int] = field(default_factory=dict)
    log_level: str = "WARNING"


async def gather_bounded(limit: int, coroutines: Sequence) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(coroutine):  # noqa: ANN001, ANN202
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


def process_cpu() -> Iterator[tuple[int, str, float]]:
    """(pid, command name, CPU seconds used so far, user + system) of every running process, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        yield int(entry.name), stat[stat.index("(") + 1:stat.rindex(")")], (int(fields[11]) + int(fields[12])) / ticks


def server_cpu() -> dict[str, float]:
    """CPU seconds used so far by the Temporal dev server and by PostgreSQL (all their processes)."""
    used = {"temporal": 0.0, "postgres": 0.0}
    for _, name, seconds in process_cpu():
        for key in used:
            if name.startswith(key):
                used[key] += seconds
    return used


def cpu_since(before: dict[str, float], count: int) -> str:
    after = server_cpu()
    return ", ".join(f"{key} {(after[key] - before[key]) / count * 1000:.1f} ms" for key in before)


async def run_bare(client: Client, count: int) -> tuple[float, float]:
    """Workflows per second, and this process's CPU seconds per workflow: start `count` bare workflows
    (START_CONCURRENCY at a time, as month-end starts settlements), then await them all."""
    from contracts.flows import BILLING_PERIOD, ORG_ID

    run = uuid.uuid4().hex[:6]

    async def start(i: int):  # noqa: ANN202
        return await client.start_workflow(
            BareWorkflow.run, org_id(i), id=f"bare-{run}-{i}", task_queue="bench-bare",
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id(i)),
                                                     SearchAttributePair(BILLING_PERIOD, PERIOD)]))

    began, cpu = time.perf_counter(), time.process_time()
    handles = await gather_bounded(START_CONCURRENCY, [start(i) for i in range(count)])
    await gather_bounded(RESULT_WAITERS, [handle.result() for handle in handles])
    return count / (time.perf_counter() - began), (time.process_time() - cpu) / count


def product_worker(client: Client, db, gateway, smtp, settings: dict[str, int]) -> tuple[Worker, str]:  # noqa: ANN001
    """worker.build_worker, or (with --worker KEY=VALUE) a Worker with the same workflows and activities and the
    same settings except those given; `activity_threads` sizes the activity thread pool."""
    import worker as product
    from contracts.flows import TASK_QUEUE

    if not settings:
        return product.build_worker(client, db, gateway, smtp), "worker.build_worker as shipped"
    options = {"max_concurrent_activities": 32, **settings}
    threads = options.pop("activity_threads", 32)
    passthrough = options.pop("sandbox_passthrough", 0)
    if passthrough:  # the sandbox takes our own modules as imported, instead of re-importing them for every run
        from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

        options["workflow_runner"] = SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows", "activities", "billing"))
    built = Worker(client, task_queue=TASK_QUEUE, workflows=product.WORKFLOWS,
                   activities=product.activities_for(client, TASK_QUEUE, db, gateway, smtp),
                   activity_executor=ThreadPoolExecutor(max_workers=threads, thread_name_prefix="activity"), **options)
    shown = {**settings, "activity_threads": threads}
    return built, "own Worker: " + ", ".join(f"{k}={v}" for k, v in shown.items())


async def temporal_part(opts: Options) -> None:
    from aiosmtpd.controller import Controller
    from sqlalchemy import text
    from contracts.codec import data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from activities.email import SmtpSettings
    from store.db import Database
    from store.gateway import SandboxGateway
    from services.client import BillingClient
    from contracts.flows import SEARCH_ATTRIBUTES

    print(f"\n1. Month-end settlement on the dev server: {opts.orgs} organizations")
    compile_project()
    with contextlib.ExitStack() as stack:
        url, plain = stack.enter_context(fresh_database("temporal"))
        began = time.perf_counter()
        lines = seed(plain, opts.orgs, opts.org_lines, credit=Decimal("100000.00"))
        print(f"  seeded               {opts.orgs} organizations, {lines} usage lines, a credit line each "
              f"(COPY, {time.perf_counter() - began:.1f} s)")
        print("                       credits cover every invoice: each settlement settles its invoice in one local "
              "activity and starts no payment")
        db = Database(url)
        stack.callback(db.dispose)
        gateway = SandboxGateway(db)
        controller = Controller(AcceptingHandler(), hostname="127.0.0.1", port=free_port())
        controller.start()
        stack.callback(controller.stop)
        smtp = SmtpSettings(host="127.0.0.1", port=controller.port)

        with dev_server_output_on_stderr():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=binary("temporal"), search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter())
        async with env:
            client = env.client
            bare_count = min(opts.bare, opts.orgs)
            # This module is passed through the sandbox, so the bare workflow pays nothing for re-importing the
            # benchmark's own code on every run: the baseline is Temporal's cost alone.
            bare_worker = Worker(client, task_queue="bench-bare", workflows=[BareWorkflow], activities=[noop],
                                 activity_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="bare"),
                                 max_concurrent_activities=32, workflow_runner=SandboxedWorkflowRunner(
                                     restrictions=SandboxRestrictions.default.with_passthrough_modules(__name__)))
            async with bare_worker:
                await run_bare(client, 20)  # warm-up
                servers = server_cpu()
                bare_rate, bare_cpu = await run_bare(client, bare_count)
                bare_servers = cpu_since(servers, bare_count)

            settlement_worker, worker_settings = product_worker(client, db, gateway, smtp, opts.worker)
            billing = BillingClient(client, db, gateway)
            async with settlement_worker:
                servers = server_cpu()
                began, cpu = time.perf_counter(), time.process_time()
                month_end = await billing.run_month_end(PERIOD)
                started_in = time.perf_counter() - began
                results = await gather_bounded(RESULT_WAITERS, [billing.settlement_result(org_id(i), PERIOD)
                                                                for i in range(opts.orgs)])
                elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
                settlement_servers = cpu_since(servers, opts.orgs)
            rate = opts.orgs / elapsed

            statuses: dict[str, int] = {}
            for result in results:
                statuses[result.invoice.status] = statuses.get(result.invoice.status, 0) + 1
            payments = sum(1 for result in results if result.payment_workflow_id)
            with db.session() as s:
                stored = s.execute(text("SELECT count(*), count(DISTINCT org_id) FROM invoices WHERE kind = 'cloud'")
                                   ).one()
            history = await client.get_workflow_handle(f"settlement-{org_id(opts.orgs // 2)}-{PERIOD}").fetch_history()
            runs = [w async for w in client.list_workflows(f"WorkflowId = 'month-end-{PERIOD}'")]
            lookups = []
            for i in (0, opts.orgs // 2, opts.orgs - 1):
                found = [w.id async for w in client.list_workflows(
                    f"OrgId = '{org_id(i)}' AND WorkflowType = 'SettlementWorkflow'")]
                lookups.append(f"OrgId = '{org_id(i)}' -> {', '.join(found) or 'nothing (visibility lag?)'}")

        print(f"  bare workflow        {bare_rate:7.1f} workflows/s  (3 no-op activities; {bare_count} workflows"
              + (f", a sample of the {opts.orgs}" if bare_count < opts.orgs else "")
              + f"; {START_CONCURRENCY} starts in flight; worker: 32 activity slots and threads as build_worker, this "
              "module passed through the sandbox)")
        print(f"  settlement           {rate:7.1f} organizations settled/s  ({opts.orgs} in {elapsed:.1f} s; "
              f"month-end started {month_end.started} in {started_in:.1f} s; {worker_settings})")
        print(f"  ratio                {rate / bare_rate:7.2f} x the bare workflow rate (target >= 1.0)")
        print(f"  CPU in this process  {bare_cpu * 1000:7.1f} ms per bare workflow, {cpu / opts.orgs * 1000:.1f} ms "
              "per settlement (client, worker and activities share one interpreter)")
        print(f"  CPU in the servers   per bare workflow: {bare_servers}; per settlement: {settlement_servers}")
        print(f"  outcome              invoices {statuses}; {stored[0]} cloud invoices for {stored[1]} organizations;"
              f" {payments} payment workflows started")
        print(f"  history              a settlement: {len(history.events)} events; month-end: {len(runs)} runs "
              f"(continue-as-new)")
        for line in lookups:
            print(f"  found by OrgId       {line}")


# --- part 2: the domain in memory --------------------------------------------------------------------------------


def domain_part(opts: Options) -> None:
    from billing.credits import CreditLineState
    from billing.invoicing import CLOUD_CURRENCY, last_day_of, price_usage
    from billing.money import round_money
    from billing.settlement import settle
    from billing.tax import Product, default_table, tax_lines_for

    orgs = max(1, opts.lines // LINES_PER_ORG)
    print(f"\n2. The domain on {orgs * LINES_PER_ORG} usage lines ({orgs} organizations x {LINES_PER_ORG}), "
          "in memory, on one core")
    rnd = random.Random(2)
    usage = []
    for _ in range(orgs):
        rows = []
        for n in range(LINES_PER_ORG):
            project, _, service, _, _, quantity, price = usage_line(rnd, n)
            rows.append((project, service, quantity, price))
        usage.append(rows)
    on = last_day_of(PERIOD)
    credits = [CreditLineState(position=0, kind="promotional", amount=Decimal("5000.00"), start=PERIOD_START,
                               end=date(2027, 12, 31)),
               CreditLineState(position=1, kind="prepaid", amount=Decimal("100000000.00"), start=PERIOD_START,
                               end=date(2027, 12, 31))]
    table = default_table()

    def bare() -> None:
        for rows in usage:
            for _, _, quantity, unit_price in rows:
                round_money(quantity * unit_price, "USD")

    def domain() -> None:
        for i, rows in enumerate(usage):
            priced = price_usage(rows)  # rate each line, round it once, sum by project and by service
            country, state = ADDRESSES[i % len(ADDRESSES)]

            def tax_for(amount: Decimal, country: str = country, state: str = state) -> list:
                return tax_lines_for(country=country, subdivision=state if country in ("US", "CA") else None,
                                     tax_id_valid=False, product=Product.ATLAS, amount=amount,
                                     currency=CLOUD_CURRENCY, on=on, table=table)

            # The subscription rule, support, tax, credits drawn top-down, status: what the activity computes.
            settle(period=PERIOD, priced=priced, sub=None, support=[], tax_for=tax_for, activation=None,
                   credits=credits, fx_rate=lambda currency: Decimal(1))

    gc.collect()
    gc.freeze()  # the inputs stay out of the collector's scans, as rows read and dropped per organization would
    undo = pin_to_one_core()
    try:
        bare_times, domain_times = [], []
        for _ in range(opts.rounds):
            bare_times.append(timed(bare))
            domain_times.append(timed(domain))
    finally:
        undo()
        gc.unfreeze()
    print(f"  bare loop            {fmt(bare_times)}  (round_money(quantity * unit_price) per line)")
    print(f"  domain               {fmt(domain_times)}  (price_usage, then billing.settlement.settle: subscription, "
          "tax, credits, status)")
    print(f"  ratio                {min(domain_times) / min(bare_times):7.2f} x the bare loop (best of "
          f"{opts.rounds} each, interleaved; target <= 2.0)")


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def fmt(times: Sequence[float]) -> str:
    return f"{min(times):6.2f} s best, {statistics.median(times):.2f} s median of {len(times)}"


# --- part 3: end to end in PostgreSQL --------------------------------------------------------------------------


def e2e_part(opts: Options) -> None:
    from sqlalchemy import text
    from temporalio.testing import ActivityEnvironment

    from activities.invoices import InvoiceActivities, SettleInvoiceRequest
    from store.db import Database
    from billing.invoicing import last_day_of

    orgs = max(1, opts.lines // LINES_PER_ORG)
    print(f"\n3. End to end on {orgs * LINES_PER_ORG} usage rows in PostgreSQL ({orgs} organizations x "
          f"{LINES_PER_ORG}), pinned to one core")
    with fresh_database("e2e") as (url, plain):
        began = time.perf_counter()
        lines = seed(plain, orgs, LINES_PER_ORG, credit=Decimal("100000000.00"))
        print(f"  seeded               {lines} usage rows (COPY, VACUUM ANALYZE, CHECKPOINT; "
              f"{time.perf_counter() - began:.1f} s)")
        db = Database(url)
        invoices, env = InvoiceActivities(db), ActivityEnvironment()
        at = datetime.combine(last_day_of(PERIOD) + timedelta(days=1), clock_time(0), tzinfo=timezone.utc)

        def settle(i: int) -> None:
            """What SettlementWorkflow's local activity does for one organization."""
            env.run(invoices.settle_cloud_invoice, SettleInvoiceRequest(org_id=org_id(i), period=PERIOD, at=at))

        undo = pin_to_one_core()
        try:
            began, cpu = time.perf_counter(), time.process_time()
            if opts.e2e_threads == 1:
                for i in range(orgs):
                    settle(i)
            else:  # as a worker would: several organizations at once, so the database works while Python does
                with ThreadPoolExecutor(max_workers=opts.e2e_threads) as pool:
                    list(pool.map(settle, range(orgs)))
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        finally:
            undo()
        with db.session() as s:
            count, stored_lines, usage = s.execute(text(
                "SELECT count(*), (SELECT count(*) FROM invoice_lines), sum(usage) FROM invoices WHERE kind = 'cloud'"
            )).one()
            line_sum = s.execute(text("SELECT sum(amount) FROM invoice_lines")).scalar()
            statuses = dict(s.execute(text("SELECT status, count(*) FROM invoices GROUP BY status")).all())
        floor = database_floor(plain)
        db.dispose()
    how = ("one organization after another" if opts.e2e_threads == 1
           else f"{opts.e2e_threads} organizations at a time, in threads; activity times overlap")
    print(f"  end to end           {elapsed:7.2f} s  (target <= 10 s; {how}; this process used {cpu:.2f} s of CPU)")
    print("                       settle_cloud_invoice for each organization (the activity, via ActivityEnvironment)")
    print(f"  stored               {count} cloud invoices {statuses}, {stored_lines} invoice lines; lines sum to "
          f"{line_sum}, invoices' usage to {usage}")
    print(f"  PostgreSQL alone     {floor:7.2f} s  to INSERT {lines} invoice lines in one INSERT ... SELECT from "
          "usage_lines (rolled back): the server's own cost of storing the lines, with no Python at all")


def database_floor(plain_url: str) -> float:
    with psycopg.connect(plain_url) as conn:
        invoice_id = conn.execute("SELECT max(id) + 1 FROM invoices").fetchone()[0]  # one more invoice's lines
        began = time.perf_counter()
        conn.execute("INSERT INTO invoice_lines (invoice_id, position, project, deployment, service, sku, start_date,"
                     " end_date, quantity, unit, unit_price, amount) SELECT %s, id, project, deployment, service, sku, "
                     "start_date, end_date, quantity, unit, unit_price, quantity * unit_price FROM usage_lines",
                     (invoice_id,))
        elapsed = time.perf_counter() - began
        conn.rollback()
    return elapsed


# --- main ------------------------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.settlement", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=10_000, help="organizations settled on the dev server")
    parser.add_argument("--lines", type=int, default=1_000_000, help="usage lines for parts 2 and 3")
    parser.add_argument("--bare", type=int, default=2_000,
                        help="bare workflows to time (a sample when below --orgs; default 2000)")
    parser.add_argument("--org-lines", type=int, default=3, help="usage lines per organization in part 1")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of part 2 (best is compared)")
    parser.add_argument("--worker", action="append", default=[], metavar="KEY=VALUE",
                        help="part 1 on a Worker built here with this setting changed from build_worker's "
                             "(e.g. max_concurrent_workflow_tasks=20, activity_threads=8); repeatable")
    parser.add_argument("--e2e-threads", type=int, default=4,
                        help="organizations closed at once in part 3 (threads; the process stays on one core)")
    parser.add_argument("--skip-temporal", action="store_true")
    parser.add_argument("--skip-domain", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    return Options(orgs=args.orgs, lines=args.lines, bare=args.bare, org_lines=args.org_lines,
                   skip_temporal=args.skip_temporal, skip_domain=args.skip_domain, skip_e2e=args.skip_e2e,
                   rounds=args.rounds, e2e_threads=args.e2e_threads, log_level=args.log_level,
                   worker={k: int(v) for k, v in (kv.split("=", 1) for kv in args.worker)})


def main(argv: Sequence[str] | None = None) -> None:
    from billing.logging import configure_logging
    from worker import install_runtime

    opts = parse(argv)
    configure_logging(opts.log_level)
    install_runtime()  # before anything creates the default runtime: core logs go to logging, not stdout
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    print(f"Settlement benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}, period {PERIOD}")
    for skip, part in [(opts.skip_temporal, lambda: asyncio.run(temporal_part(opts))),
                       (opts.skip_domain, lambda: domain_part(opts)), (opts.skip_e2e, lambda: e2e_part(opts))]:
        if not skip:
            before = os.getloadavg()[0]
            part()
            print(f"  machine load         {before:.2f} before, {os.getloadavg()[0]:.2f} after (1-minute load average, "
                  "this benchmark's own processes included)")


if __name__ == "__main__":
    # Run from the importable module, not __main__: the workflow sandbox refuses workflows defined in __main__.
    from bench.settlement import main as run

    run()
