"""The fault suite's run: a month-end of many organizations on the Temporal dev server (a SQLite file) with a SQLite
billing database, worker processes and the sandbox gateway service, while

  (a) a worker process is killed with SIGKILL `kills` times at random moments and started again,
  (b) the dev server is stopped and started again once, mid-flow,
  (c) the gateway fails 30% of its charges and refunds (500s, timeouts before and after charging),
  (d) the billing database's file is made unavailable once (new connections fail; a worker starts meanwhile),
  (e) every month-end trigger is sent twice and the gateway POSTs every webhook twice.

Then it reads what happened from the billing database and the gateway's own ledger: `run()` returns the figures
that tests/faults/test_faults.py asserts and `python -m tests.faults.report` prints. Loopback only; bounded in
time (DEADLINE) and count.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from sqlmodel import select

from billing.cards import payment_method_adapter
from billing.profiles import BillingProfileIn, OrganizationIn
from contracts.codec import new_key_line
from services.client import BillingClient, CreditLineIn, UsageIn
from starter.api_server import ApiServer
from starter.gateway_service import GatewayServer
from starter.processes import binary, die_with_parent, free_port
from starter.simulate import report
from starter.temporal_setup import dev_server_flags, register_search_attributes
from store import migrate
from store.db import Database
from store.gateway_http import HttpGateway
from store.tables import EmailMessage, Invoice, Mandate, Payment
from tests.accounting import assert_every_cent_accounted

ROOT = Path(__file__).parents[2]
RESULTS = ROOT / "tests" / "artifacts" / "faults.json"
PERIOD = "2026-11"
CREATED = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)  # the business clock while the organizations are set up
FAULTS = "error_500=0.1,timeout_before=0.1,timeout_after=0.1,hang=2.5,duplicate_webhooks=1"
GATEWAY_TIMEOUT = "1.5"  # seconds: the workers' HttpGateway gives up before the gateway's hang ends
RBI_PROCESSING = "15s"  # India's issuer settles a processing charge 15 s after it (E4: days in life)
DEADLINE = 900.0  # seconds from the trigger until every payable invoice must have come to rest
WORKERS = 2
CARDS = {"visa": "4242424242424242", "declined": "4000000000000002", "insufficient": "4000000000009995",
         "india": "4000003560000123"}


def kind_of(i: int) -> str:
    """The organization's way of paying: cards (some declined), PayPal, India, or credits covering everything."""
    return ["visa", "visa", "visa", "visa", "declined", "paypal", "paypal", "india", "credits", "insufficient"][i % 10]


@dataclass
class Chaos:
    kills: int = 0
    worker_starts: int = 0
    dev_server_restarts: int = 0
    database_cuts: int = 0
    month_end_triggers: int = 0
    worker_exits: int = 0  # a worker that could not reach the server (it was down) and ended by itself
    timeline: list[str] = field(default_factory=list)

    def note(self, started: float, what: str) -> None:
        self.timeline.append(f"{time.monotonic() - started:6.1f} s  {what}")


class Processes:
    """The dev server and the worker processes of one run, each in its own session, ended with the harness."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.temporal_port = free_port()
        self.address = f"127.0.0.1:{self.temporal_port}"
        self.dev_server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.started = 0

    def _spawn(self, command: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        with (self.work / log).open("ab") as out:
            return subprocess.Popen(command, cwd=ROOT, env=env or self.env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())

    def start_dev_server(self) -> None:
        self.dev_server = self._spawn(
            [binary("temporal"), "server", "start-dev", "--db-filename", str(self.work / "temporal.db"),
             "--ip", "127.0.0.1", "--port", str(self.temporal_port), "--headless", "--log-level", "error",
             *dev_server_flags()], "temporal.log")

    def stop_dev_server(self) -> None:
        if self.dev_server is not None and self.dev_server.poll() is None:
            self.dev_server.terminate()
            try:
                self.dev_server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.dev_server.pid, signal.SIGKILL)
                self.dev_server.wait()

    def start_worker(self) -> subprocess.Popen:
        self.started += 1
        worker = self._spawn([sys.executable, "-m", "worker"], f"worker-{self.started}.log",
                             {**self.env, "TEMPORAL_ADDRESS": self.address})
        self.workers.append(worker)
        return worker

    def kill_worker(self, rnd: random.Random) -> None:
        alive = [w for w in self.workers if w.poll() is None]
        victim = rnd.choice(alive)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.workers.remove(victim)

    def replace_exited(self) -> int:
        """Start a new worker for each one that ended by itself, as a process supervisor does; how many."""
        exited = [w for w in self.workers if w.poll() is not None]
        for worker in exited:
            self.workers.remove(worker)
            self.start_worker()
        return len(exited)

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self.stop_dev_server()


def _organization(i: int) -> OrganizationIn:
    kind = kind_of(i)
    if kind == "paypal":
        method = payment_method_adapter.validate_python({"type": "paypal", "email": f"pay{i}@faults.test"})
    else:
        number = CARDS["visa" if kind == "credits" else kind]
        method = payment_method_adapter.validate_python(
            {"type": "card", "number": number, "exp": "12/30", "cvc": "123", "name": f"Owner {i}"},
            context={"today": CREATED})
    return OrganizationIn(id=f"org-{i:04d}", owners=[f"owner{i}@faults.test"], payment_method=method,
                          billing_profile=BillingProfileIn(country="US", state="NY", city="New York",
                                                           address_line1=f"{i} Main St", postal_code="10001"))


def _usage(i: int, rnd: random.Random) -> list[UsageIn]:
    # Small amounts: an India charge stays under INR 15,000 (no authorization, E4) and its mandate's cap.
    hours = Decimal(rnd.randrange(50, 1500))
    return [UsageIn(key=f"org-{i:04d}:{PERIOD}", project="web", deployment="Cluster0", service="Atlas Dedicated",
                    sku="ATLAS_AWS_INSTANCE_M10", start_date=date(2026, 11, 1), end_date=date(2026, 11, 30),
                    quantity=hours, unit="hours", unit_price=Decimal("0.08"))]


async def _bounded(limit: int, coroutines: list) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(coroutine) -> None:
        async with gate:
            await coroutine
    await asyncio.gather(*(one(c) for c in coroutines))


async def _seed(billing: BillingClient, orgs: int, rnd: random.Random) -> None:
    """The organizations as BillingClient.create_organization makes them (tokenized at the gateway, inserted with
    their first cycle), their usage and credits; each India card's mandate through its workflow (E1). Their
    OrgBillingWorkflow is left to the payments' notices to start (signal-with-start), as for any organization whose
    first month-end comes before anything else started it: a thousand fewer starts before the clock runs."""
    await billing.record_fx_rate("INR", Decimal("83.20"), CREATED - timedelta(days=30))
    usage = [_usage(i, rnd) for i in range(orgs)]

    async def one(i: int) -> None:
        org = _organization(i)
        method = await billing.tokenize(org.payment_method)
        await asyncio.to_thread(billing._insert_org, org, method, CREATED)
        await billing.record_usage(org.id, usage[i])
        if kind_of(i) == "credits":
            await billing.add_credit_line(org.id, CreditLineIn(amount=Decimal("1000.00"), start=date(2026, 11, 1),
                                                               end=date(2027, 12, 31)))
        if kind_of(i) == "india":
            await billing._register_mandate_if_india(org.id, method)
    await _bounded(16, [one(i) for i in range(orgs)])


def _count_mandates(db: Database) -> int:
    with db.session() as s:
        return len(s.exec(select(Mandate.id).where(Mandate.status == "ACTIVE")).all())


def _progress(db: Database) -> tuple[int, int, int]:
    """(cloud invoices of the period, payable ones, payable ones at rest: PAID, or FAILED with its e-mail)."""
    with db.session() as s:
        invoices = s.exec(select(Invoice).where(Invoice.period == PERIOD, Invoice.kind == "cloud")).all()
        failed_mail = set(s.exec(select(EmailMessage.key).where(EmailMessage.kind == "payment_failed")).all())
        statuses = {(p.invoice_id): p.status for p in s.exec(select(Payment).order_by(Payment.attempt))}
    payable = [i for i in invoices if i.total > i.credits_applied and i.invoiced == 0]
    rest = 0
    for invoice in payable:
        if invoice.status == "PAID" and statuses.get(invoice.id) == "PAID":
            rest += 1
        elif invoice.status == "FAILED" and any(k.startswith(f"payment_failed:{invoice.number}:") for k in failed_mail):
            rest += 1
    return len(invoices), len(payable), rest


def _cut_database(path: Path) -> Path:
    """New connections to the billing database fail (a directory stands where the file was); open ones keep their
    file descriptors. Returns where the file went."""
    aside = path.with_name(path.name + ".away")
    path.rename(aside)
    path.mkdir()
    return aside


def _restore_database(path: Path, aside: Path) -> None:
    path.rmdir()
    aside.rename(path)


async def _chaos(procs: Processes, chaos: Chaos, db_file: Path, billing: BillingClient, kills: int,
                 rnd: random.Random, started: float) -> None:
    """Kills at random moments; the dev server's restart after the third kill; the database cut with the sixth."""
    for n in range(1, kills + 1):
        await asyncio.sleep(rnd.uniform(2.0, 7.0))
        while not [w for w in procs.workers if w.poll() is None]:
            await asyncio.sleep(0.5)  # the supervisor is starting one
        procs.kill_worker(rnd)
        chaos.kills += 1
        chaos.note(started, f"worker killed with SIGKILL ({n}/{kills})")
        if n == 6:
            aside = await asyncio.to_thread(_cut_database, db_file)
            chaos.database_cuts += 1
            chaos.note(started, "billing database file unavailable")
            procs.start_worker()  # a worker opening its connections while the file is gone
            chaos.worker_starts += 1
            await asyncio.sleep(4)
            await asyncio.to_thread(_restore_database, db_file, aside)
            chaos.note(started, "billing database file back")
        else:
            procs.start_worker()
            chaos.worker_starts += 1
        if n == 3:
            await asyncio.to_thread(procs.stop_dev_server)
            chaos.note(started, "temporal dev server stopped")
            await asyncio.sleep(2)
            procs.start_dev_server()
            chaos.dev_server_restarts += 1
            chaos.note(started, "temporal dev server started again")
            await _trigger(billing, chaos, started)  # the trigger sent again once the server is back
    chaos.note(started, "chaos over")


async def _supervise(procs: Processes, chaos: Chaos, started: float) -> None:
    while True:
        await asyncio.sleep(1)
        if replaced := procs.replace_exited():
            chaos.worker_exits += replaced
            chaos.worker_starts += replaced
            chaos.note(started, f"{replaced} worker(s) ended by themselves; started again")


async def _trigger(billing: BillingClient, chaos: Chaos, started: float) -> None:
    """The month-end trigger, twice at once (SPEC H1: the business key finds the first)."""
    for _ in range(60):
        try:
            await asyncio.gather(billing.start_month_end(PERIOD), billing.start_month_end(PERIOD))
            chaos.month_end_triggers += 2
            chaos.note(started, "month-end triggered twice")
            return
        except Exception as err:  # noqa: BLE001 (the server may still be starting)
            last = err
            await asyncio.sleep(1)
    raise RuntimeError(f"the month-end trigger never reached the server: {last}")


async def run(orgs: int = 1000, kills: int = 10, seed: int = 16, work: Path | None = None) -> dict[str, Any]:
    rnd = random.Random(seed)
    work = work or Path(os.environ.get("FAULTS_WORKDIR", "/tmp")) / f"billing-faults-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db_file = work / "store.db"
    url = f"sqlite:///{db_file}"
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    os.environ.setdefault("BILLING_CODEC_KEYS", new_key_line("faults"))
    env = {**os.environ, "DATABASE_URL": url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
           "BILLING_GATEWAY_TIMEOUT": GATEWAY_TIMEOUT, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    env.pop("BILLING_SDK_METRICS_ADDRESS", None)
    procs = Processes(work, env)
    gateway_server = None
    api = None
    db = None
    chaos = Chaos()
    try:
        migrate.upgrade(url)
        db = Database(url)
        procs.start_dev_server()
        from worker import connect  # after the codec keys are in the environment

        client = None
        for _ in range(120):
            try:
                client = await asyncio.wait_for(connect(procs.address), 5)
                break
            except Exception:  # noqa: BLE001 (the dev server is starting)
                await asyncio.sleep(0.5)
        if client is None:
            raise RuntimeError("the dev server did not come up:\n" + (work / "temporal.log").read_text()[-2000:])
        await register_search_attributes(client)
        api_port = free_port()
        gateway_server = GatewayServer(database_url=f"sqlite:///{work / 'gateway.db'}", faults=FAULTS,
                                       webhook_url=f"http://127.0.0.1:{api_port}/v1/webhooks/gateway",
                                       extra_env={"BILLING_RBI_PROCESSING": RBI_PROCESSING, "LOG_LEVEL": "WARNING"},
                                       log_file=work / "gateway.log")
        gateway_server.start()
        await gateway_server.ready()
        env["BILLING_GATEWAY_URL"] = gateway_server.url
        gateway = HttpGateway(gateway_server.url, timeout=10.0)
        clock_at = CREATED

        async def clock() -> datetime:
            return clock_at
        billing = BillingClient(client, db, gateway, clock=clock)
        api = ApiServer(BillingClient(client, db, gateway), "127.0.0.1", api_port)  # India's webhooks arrive here
        await api.start()
        for _ in range(WORKERS):
            procs.start_worker()

        began = time.monotonic()
        await _seed(billing, orgs, rnd)
        india = len([i for i in range(orgs) if kind_of(i) == "india"])
        if _count_mandates(db) != india:
            raise RuntimeError(f"mandates registered: {_count_mandates(db)} of {india}")
        seeded = time.monotonic() - began

        started = time.monotonic()
        await _trigger(billing, chaos, started)
        chaos_task = asyncio.create_task(_chaos(procs, chaos, db_file, billing, kills, rnd, started))
        supervisor = asyncio.create_task(_supervise(procs, chaos, started))
        progress = (0, 0, 0)
        while True:
            if chaos_task.done():
                chaos_task.result()  # raises what went wrong in it
            try:
                progress = await asyncio.to_thread(_progress, db)
            except Exception:  # noqa: BLE001 (the file may be away for a moment)
                pass
            invoices, payable, at_rest = progress
            if chaos_task.done() and invoices == orgs and at_rest == payable:
                break
            if time.monotonic() - started > DEADLINE:
                break
            await asyncio.sleep(5)
        flow = time.monotonic() - started
        supervisor.cancel()
        if not chaos_task.done():
            chaos_task.cancel()
        await asyncio.sleep(3)  # webhooks still being delivered twice
        results = _figures(db, gateway, orgs, chaos)
        results.update(seconds_seeding=round(seeded, 1), seconds_flow=round(flow, 1), organizations=orgs,
                       timeline=chaos.timeline, deadline_met=flow <= DEADLINE)
        gateway.close()
        return results
    finally:
        if api is not None:
            await api.stop()
        procs.stop_all()
        if gateway_server is not None:
            gateway_server.stop()
        smtp.stop()
        if db is not None:
            db.dispose()


def _figures(db: Database, gateway: HttpGateway, orgs: int, chaos: Chaos) -> dict[str, Any]:
    with db.session() as s:
        invoices = s.exec(select(Invoice).where(Invoice.period == PERIOD, Invoice.kind == "cloud")).all()
        payments = s.exec(select(Payment)).all()
        failed_mail = set(s.exec(select(EmailMessage.key).where(EmailMessage.kind == "payment_failed")).all())
    per_org = Counter(i.org_id for i in invoices)
    payable = [i for i in invoices if i.total > i.credits_applied and i.invoiced == 0]
    by_number = {i.number: i for i in payable}
    ledger = [c for c in gateway.charges(kind="charge", outcome="succeeded") if not c.idempotency_key.startswith("verify:")]
    charged = Counter(c.idempotency_key.split(":")[0] for c in ledger)
    paid = [i for i in payable if i.status == "PAID"]
    failed = [i for i in payable if i.status == "FAILED"]
    failed_with_mail = [i for i in failed if any(k.startswith(f"payment_failed:{i.number}:") for k in failed_mail)]
    output = report(db, date(2026, 12, 31))
    try:
        assert_every_cent_accounted(output)
        invariant = "holds"
    except AssertionError as err:
        invariant = f"BROKEN: {err}"
    # The gateway's money against ours, to the cent, by currency: what it charged is what we recorded as paid.
    ours: Counter = Counter()
    for p in payments:
        if p.status == "PAID" and p.method in ("card", "paypal"):
            ours[p.currency] += p.amount
    theirs: Counter = Counter()
    for c in ledger:
        theirs[c.currency] += c.amount
    faults = gateway.faults()
    return {
        "invoices": len(invoices),
        "missing_invoices": orgs - len(per_org),
        "duplicate_invoices": sum(n - 1 for n in per_org.values() if n > 1),
        "payable_invoices": len(payable),
        "paid": len(paid),
        "failed": len(failed),
        "failed_with_email": len(failed_with_mail),
        "not_at_rest": len(payable) - len(paid) - len(failed_with_mail),
        "charges": len(ledger),
        "double_charges": sum(n - 1 for n in charged.values() if n > 1),
        "paid_without_one_charge": sum(1 for i in paid if charged.get(i.number) != 1),
        "charges_without_paid_invoice": sum(1 for number in charged if number not in by_number
                                           or by_number[number].status != "PAID"),
        "ledger_matches_payments": dict(theirs) == dict(ours),
        "invariant": invariant,
        "kills": chaos.kills,
        "worker_starts": chaos.worker_starts,
        "worker_exits": chaos.worker_exits,
        "dev_server_restarts": chaos.dev_server_restarts,
        "database_cuts": chaos.database_cuts,
        "month_end_triggers": chaos.month_end_triggers,
        "faults": {k: v for k, v in faults.items() if k != "webhooks_sent"},
        "webhooks_sent": faults.get("webhooks_sent", 0),
    }


def write(results: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    outcome = asyncio.run(run(orgs=int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
    write(outcome)
    print(json.dumps(outcome, indent=2, default=str))
