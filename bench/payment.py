"""Benchmark: latency from the payment trigger to PAID, on a local dev server with an in-process worker.

    .venv/bin/python -m bench.payment [--payments 200] [--concurrency 1] [--database-url URL] [--breakdown]
                                      [--warmup 10] [--dynamic-config KEY=VALUE ...]

Everything runs in this process except the Temporal dev server (in memory): a fresh SQLite database in a
temporary directory (or --database-url, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/bench), a local
SMTP server that accepts every message, and the real worker (worker.build_worker) with the SandboxGateway.

Each payment gets its own organization (card 4242424242424242) and one CLOSED cloud invoice, inserted
directly, so that only the payment path is timed: from the moment `BillingClient.charge_invoice(number)` is
called (the trigger) to
  (a) the payment row in the database having status PAID (one thread polls every 2 ms), and
  (b) the workflow's completion (receipt e-mail sent), seen through handle.result().
Warm-up payments run first and are not counted. This is a measurement, not a test: nothing asserts on time.
The one assertion is on correctness: the gateway charged exactly once per payment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from contracts.codec import data_converter
from temporalio.testing import WorkflowEnvironment

from activities.email import SmtpSettings
from store import migrate
from store.db import Database
from store.gateway import SandboxGateway
from billing.invoicing import CLOUD_CURRENCY, invoice_number, last_closed_period
from billing.logging import configure_logging
from billing.profiles import OrganizationIn
from store.tables import Invoice, InvoiceStatus, PaymentStatus, SandboxCharge
from services.client import BillingClient
from starter.processes import binary, free_port
from worker import build_worker, install_runtime
from contracts.flows import SEARCH_ATTRIBUTES

CARD = "4242424242424242"
POLL_INTERVAL = 0.002  # seconds between two reads of the payments table
PAID_AFTER_COMPLETION_GRACE = 30.0  # seconds; only a guard against hanging, never a measured bound


# --- local services ------------------------------------------------------------------------------------------


class AcceptingHandler:
    """aiosmtpd handler: accept every message, keep only a count."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.received += 1
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def dev_server_output_on_stderr():
    """The dev server inherits our stdout and prints a banner there; give it stderr, keep stdout for the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


# --- the PAID watcher ----------------------------------------------------------------------------------------


class PaidWatcher(threading.Thread):
    """One thread polls the payments table every 2 ms for the invoices in flight.

    The moment a row is first seen PAID is taken in this thread, so a busy event loop does not delay it.
    Each poll ends its transaction, so the next one sees new commits (SQLite WAL snapshots, PostgreSQL alike).
    """

    QUERY = text("SELECT DISTINCT invoice_id FROM payments WHERE status = :paid AND invoice_id IN :ids") \
        .bindparams(bindparam("ids", expanding=True))

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop, interval: float = POLL_INTERVAL) -> None:
        super().__init__(name="paid-watcher", daemon=True)
        self.db = db
        self.loop = loop
        self.interval = interval
        self.polls = 0
        self.error: BaseException | None = None
        self._pending: dict[int, asyncio.Future[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def watch(self, invoice_id: int) -> asyncio.Future[tuple[float, float]]:
        """A future resolved with (perf_counter, wall time) when the invoice's payment row is first seen PAID."""
        future: asyncio.Future[tuple[float, float]] = self.loop.create_future()
        if self.error is not None:
            raise RuntimeError(f"the PAID watcher stopped: {self.error!r}")
        with self._lock:
            self._pending[invoice_id] = future
        return future

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def run(self) -> None:
        try:
            self._poll()
        except BaseException as err:  # a broken watcher must fail the payments it watches, not hang them
            self.error = err
            with self._lock:
                pending, self._pending = list(self._pending.values()), {}
            for future in pending:
                self.loop.call_soon_threadsafe(_fail, future, err)

    def _poll(self) -> None:
        with self.db.engine.connect() as conn:
            while not self._stopping.is_set():
                with self._lock:
                    ids = list(self._pending)
                if ids:
                    paid = conn.execute(self.QUERY, {"paid": PaymentStatus.PAID.value, "ids": ids}).scalars().all()
                    seen = (time.perf_counter(), time.time())
                    conn.rollback()  # end the read transaction: the next poll must see fresh commits
                    self.polls += 1
                    for invoice_id in paid:
                        with self._lock:
                            future = self._pending.pop(invoice_id, None)
                        if future is not None:
                            self.loop.call_soon_threadsafe(_resolve, future, seen)
                time.sleep(self.interval)


def _resolve(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, err: BaseException) -> None:
    if not future.done():
        future.set_exception(RuntimeError(f"the PAID watcher stopped: {err!r}"))


# --- seeding -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    org_id: str
    invoice_id: int
    number: str


async def seed(billing: BillingClient, db: Database, count: int, run_id: str) -> list[Target]:
    """`count` organizations paying by card 4242..., each with one CLOSED cloud invoice, inserted directly."""
    exp = f"12/{(date.today().year + 5) % 100:02d}"
    org_ids = [f"bench-{run_id}-{i:05d}" for i in range(count)]
    gate = asyncio.Semaphore(8)

    async def create(i: int, org_id: str) -> None:
        org = OrganizationIn.model_validate({
            "id": org_id, "name": f"Bench {i}", "owners": [f"owner{i}@bench.example.com"],
            "billing_profile": {"country": "US", "address_line1": "1 Main Street", "city": "Springfield",
                                "state": "IL", "postal_code": "62701"},
            "payment_method": {"type": "card", "number": CARD, "exp": exp, "cvc": "123", "name": f"Bench {i}"},
        })
        async with gate:
            await billing.create_organization(org)

    await asyncio.gather(*(create(i, org_id) for i, org_id in enumerate(org_ids)))

    period = last_closed_period(datetime.now(timezone.utc))  # not the open cycle's PENDING invoice (G0)
    now = datetime.now(timezone.utc)

    def insert_invoices() -> list[Target]:
        targets = []
        with db.session() as s:
            for i, org_id in enumerate(org_ids):
                amount = Decimal(f"{10 + i % 90}.{i % 100:02d}")
                invoice = Invoice(key=f"{org_id}:{period}:cloud", org_id=org_id, kind="cloud", period=period,
                                  status=InvoiceStatus.CLOSED, currency=CLOUD_CURRENCY, usage=amount,
                                  billed_usage=amount, tax=Decimal("0"), total=amount, amount_due=amount,
                                  created_at=now)
                s.add(invoice)
                s.flush()
                invoice.number = invoice_number(period, invoice.id)
                s.add(invoice)
                targets.append(Target(org_id=org_id, invoice_id=invoice.id, number=invoice.number))
        return targets

    return await asyncio.to_thread(insert_invoices)


# --- measuring -----------------------------------------------------------------------------------------------


@dataclass
class Sample:
    target: Target
    workflow_id: str = ""
    paid_ms: float = 0.0  # (a) trigger -> payment row PAID
    done_ms: float = 0.0  # (b) trigger -> workflow completed
    wall_trigger: float = 0.0
    wall_paid: float = 0.0
    wall_done: float = 0.0


async def pay(billing: BillingClient, watcher: PaidWatcher, target: Target) -> Sample:
    paid = watcher.watch(target.invoice_id)
    wall0, t0 = time.time(), time.perf_counter()
    handle = await billing.charge_invoice(target.number)  # the trigger
    state = await handle.result()
    t_done, wall_done = time.perf_counter(), time.time()
    try:  # not a timing assertion: a guard so that a row that never turns PAID fails instead of hanging
        t_paid, wall_paid = await asyncio.wait_for(asyncio.shield(paid), PAID_AFTER_COMPLETION_GRACE)
    except TimeoutError:
        raise RuntimeError(f"{target.number}: workflow completed but no PAID payment row appeared") from None
    if state.status != PaymentStatus.PAID:
        raise RuntimeError(f"{target.number}: workflow ended {state.status}, not PAID")
    return Sample(target=target, workflow_id=handle.id, paid_ms=(t_paid - t0) * 1000,
                  done_ms=(t_done - t0) * 1000, wall_trigger=wall0, wall_paid=wall_paid, wall_done=wall_done)


async def run_batch(billing: BillingClient, watcher: PaidWatcher, targets: Sequence[Target],
                    concurrency: int) -> tuple[list[Sample], float]:
    """Pay every target with at most `concurrency` payments in flight; returns the samples and the wall time."""
    queue = list(reversed(targets))
    samples: list[Sample] = []

    async def lane() -> None:
        while queue:
            samples.append(await pay(billing, watcher, queue.pop()))

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, len(targets))))))
    return samples, time.perf_counter() - start


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_row(label: str, values: Sequence[float]) -> str:
    stats = [percentile(values, 50), percentile(values, 90), percentile(values, 99), max(values),
             sum(values) / len(values)]
    return f"  {label:<34}" + "".join(f"{v:>9.1f}" for v in stats)


# --- where the time goes: server-side history events, aligned with the client's wall clock ---------------------


def _event_seconds(event) -> float:  # noqa: ANN001
    return event.event_time.seconds + event.event_time.nanos / 1e9


async def milestones(env: WorkflowEnvironment, sample: Sample) -> list[tuple[str, float]]:
    """The payment's steps in order: the client's trigger, the server's events, the client's observations."""
    history = await env.client.get_workflow_handle(sample.workflow_id).fetch_history()
    names: dict[int, str] = {}
    points: list[tuple[str, float]] = [("trigger (charge_invoice called)", sample.wall_trigger)]
    wft = 0
    for event in history.events:
        kind = event.event_type
        at = _event_seconds(event)
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            points.append(("workflow started", at))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            wft += 1
            points.append((f"WFT{wft} scheduled", at))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            points.append((f"WFT{wft} started", at))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            points.append((f"WFT{wft} completed", at))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            names[event.event_id] = name
            points.append((f"{name} scheduled", at))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            name = names.get(event.activity_task_started_event_attributes.scheduled_event_id, "activity")
            points.append((f"{name} started", at))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name = names.get(event.activity_task_completed_event_attributes.scheduled_event_id, "activity")
            if name == "charge_payment":
                points.append(("payment row PAID (observed)", sample.wall_paid))
            points.append((f"{name} completed", at))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            points.append(("workflow completed", at))
    points.append(("result() returned", sample.wall_done))
    return points


async def breakdown(env: WorkflowEnvironment, samples: Sequence[Sample]) -> list[str]:
    """Median time between consecutive steps, over the payments whose history has the most common shape."""
    all_points = [await milestones(env, sample) for sample in samples]
    shapes: dict[tuple[str, ...], list[list[tuple[str, float]]]] = {}
    for points in all_points:
        shapes.setdefault(tuple(label for label, _ in points), []).append(points)
    shape, group = max(shapes.items(), key=lambda item: len(item[1]))
    lines = [f"  where the time goes (median over {len(group)}/{len(samples)} payments with the same history; "
             "server event times, client wall clock):"]
    for i in range(1, len(shape)):
        deltas = [(points[i][1] - points[i - 1][1]) * 1000 for points in group]
        lines.append(f"    {shape[i - 1]:>32} -> {shape[i]:<32} {percentile(deltas, 50):>8.1f} ms"
                     f"  (p90 {percentile(deltas, 90):.1f})")
    return lines


# --- the benchmark -------------------------------------------------------------------------------------------


@dataclass
class Options:
    payments: int = 200
    concurrency: int = 1
    warmup: int = 10
    database_url: str | None = None
    breakdown: bool = False
    log_level: str = "WARNING"
    dynamic_config: tuple[str, ...] = ()


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def bench(opts: Options) -> None:
    configure_logging(opts.log_level)
    install_runtime()  # before anything creates the default runtime: core logs go to logging, not stdout
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-payment-")))
        url = opts.database_url or f"sqlite:///{tmp / 'store.db'}"
        migrate.upgrade(url)
        db = Database(url)
        stack.callback(db.dispose)
        gateway = SandboxGateway(db)

        smtp_handler = AcceptingHandler()
        smtp_port = free_port()
        controller = Controller(smtp_handler, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        stack.callback(controller.stop)

        with dev_server_output_on_stderr():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=binary("temporal"), search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter(),
                dev_server_extra_args=[arg for kv in opts.dynamic_config for arg in ("--dynamic-config-value", kv)])
        async with env:
            worker = build_worker(env.client, db, gateway, SmtpSettings(host="127.0.0.1", port=smtp_port))
            billing = BillingClient(env.client, db, gateway)
            run_id = uuid.uuid4().hex[:8]
            async with worker:
                seed_start = time.perf_counter()
                targets = await seed(billing, db, opts.warmup + opts.payments, run_id)
                seed_seconds = time.perf_counter() - seed_start
                charges_before = len(await asyncio.to_thread(gateway.charges))  # seeding's card verifications
                mails_before = smtp_handler.received

                watcher = PaidWatcher(db, asyncio.get_running_loop())
                watcher.start()
                try:
                    await run_batch(billing, watcher, targets[:opts.warmup], opts.concurrency)
                    samples, elapsed = await run_batch(billing, watcher, targets[opts.warmup:], opts.concurrency)
                finally:
                    watcher.stop()
                lines_breakdown = await breakdown(env, samples) if opts.breakdown and samples else []

        # Correctness: exactly one gateway charge per payment, keyed by the workflow's first attempt.
        def new_charges() -> list[SandboxCharge]:
            with db.session() as s:
                return list(s.exec(select(SandboxCharge).where(SandboxCharge.kind == "charge")
                                   .order_by(SandboxCharge.created_at)).all())

        succeeded = await asyncio.to_thread(gateway.charges)
        charged = len(succeeded) - charges_before
        expected = opts.payments + opts.warmup
        numbers = {t.number for t in targets}
        payment_charges = [c for c in await asyncio.to_thread(new_charges)
                           if c.idempotency_key.rsplit(":", 1)[0] in numbers]
        keys = sorted(c.idempotency_key for c in payment_charges)
        mails = smtp_handler.received - mails_before

        paid = [s.paid_ms for s in samples]
        done = [s.done_ms for s in samples]
        database = display_url(url) if opts.database_url else f"SQLite file in a temp dir ({url})"
        print()
        print("Payment benchmark: trigger (BillingClient.charge_invoice) -> PAID")
        print(f"  payments             {opts.payments} (+ {opts.warmup} warm-up, not counted)")
        print(f"  concurrency          {opts.concurrency}")
        print(f"  database             {database}")
        print("  temporal             dev server in memory (temporal CLI next to the interpreter), "
              "worker in this process")
        if opts.dynamic_config:
            print(f"  dynamic config       {', '.join(opts.dynamic_config)}")
        print(f"  seeding              {len(targets)} orgs + CLOSED invoices in {seed_seconds:.1f} s")
        if samples:
            print(f"  {'latency (ms)':<34}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'mean':>9}")
            print(latency_row("(a) payment row PAID in database", paid))
            print(latency_row("(b) workflow completed (receipt)", done))
            print(f"  throughput           {len(samples) / elapsed:.1f} payments/s "
                  f"({len(samples)} in {elapsed:.2f} s)")
        print(f"  gateway charges      {charged} (SandboxGateway.charges(): {len(succeeded)} in all, "
              f"{charges_before} of them card verifications while seeding); expected {expected}")
        print(f"  receipts via SMTP    {mails}; watcher polls {watcher.polls}")
        for line in lines_breakdown:
            print(line)

        assert charged == expected, f"gateway charged {charged} times for {expected} payments"
        assert len(payment_charges) == expected and keys == sorted(f"{n}:1" for n in numbers), \
            "not exactly one charge per payment"


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.payment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=200, help="measured payments (default 200)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="payments in flight at once (default 1: sequential latency)")
    parser.add_argument("--warmup", type=int, default=10, help="payments before measuring (default 10)")
    parser.add_argument("--database-url", default=None,
                        help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/bench (default: temp SQLite)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print where the time goes, from the workflow histories")
    parser.add_argument("--dynamic-config", action="append", default=[], metavar="KEY=VALUE",
                        help="dev server dynamic config, repeatable; e.g. history.transferProcessorMaxPollRPS=1000 "
                             "removes the ~30 ms per workflow task that the single-shard dev server's default "
                             "transfer-queue poll rate (20/s) adds")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if args.payments < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--payments and --concurrency must be at least 1, --warmup at least 0")
    return Options(payments=args.payments, concurrency=args.concurrency, warmup=args.warmup,
                   database_url=args.database_url, breakdown=args.breakdown, log_level=args.log_level,
                   dynamic_config=tuple(args.dynamic_config))


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    main()
