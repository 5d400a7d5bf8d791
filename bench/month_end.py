"""Benchmark: month-end to cash. Every organization settled, charged and told, beside a bare workflow.

    .venv/bin/python -m bench.month_end [--orgs 10000] [--database-url URL] [--bare 2000] [--sample 20]
                                        [--rbi-processing 5s] [--detail] [--keep] [--progress 60]

A measurement, not a test: nothing asserts on time; correctness is asserted at the end.

The product runs as `make run` runs it: the Temporal dev server on a SQLite file (`--db-filename`, in a temporary
directory), our database on SQLite (default) or PostgreSQL (`--database-url postgresql+psycopg://…/postgres`: a fresh
database is created on that server and dropped afterwards), the real worker (worker.build_worker) in this process
with the sandbox gateway in-process, and an SMTP server in a child process (bench/smtp_sink.py) that records each
message's Message-ID and recipients, so that what it costs is not counted as ours.

--orgs organizations are seeded with the mix of a real 1st of the month: 70% card (5% of those declined, card
4000000000000002), 10% PayPal, 10% covered by credits (card on file, a promotional credit line larger than the
usage), 5% India-issued cards (4000003560000123) with charges below INR 15,000 (RBI mandate: the payment stays
PROCESSING until the issuer's signed webhook, delivered `--rbi-processing` after the charge, default
BILLING_RBI_PROCESSING or 5s), 5% monthly commitments (INVOICED, a tax invoice e-mailed). Each has an owner, a
billing admin, a billing e-mail and profile, a payment method tokenized by the sandbox gateway (with its verification
charge and refund; India: the mandate and its e-mail), its organization's workflow, the period's usage and its PENDING
cycle invoice. The first organization of each kind goes through the real BillingClient path (create_organization,
add_subscription, add_credit_line, record_usage); the others are bulk-inserted (COPY on PostgreSQL) from the same
table models, after a bulk-seeded twin of each real one was compared with it table by table, field by field.

Timed: `BillingClient.run_month_end(period)` as the operator runs it, until every payable invoice is PAID or FAILED
and every expected e-mail has reached the SMTP server (payment_succeeded, payment_failed, the commitments'
tax_invoice), counted per organization and kind. Beside it: the bare workflow of bench/settlement.py (three no-op
activities), started and awaited the same way in the same run. India's notice period is real time inside the
measurement; the report gives the end to end with and without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time as clock_time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path

from bench.settlement import BareWorkflow, compile_project, gather_bounded, noop, process_cpu, run_bare

RESULT_TIMEOUT = timedelta(minutes=60)  # a guard against hanging, never a measured bound ...
RESULT_TIMEOUT_PER_ORG = timedelta(seconds=0.5)  # ... longer for a large N (30,000 organizations: 4 h 10 min)
POLL_SECONDS = 0.5
KINDS = ("card", "declined", "paypal", "credits", "india", "commitment")
PAYABLE = ("card", "declined", "paypal", "india")  # charged at the gateway
EXPECTED_MAIL = {"card": "payment_succeeded", "declined": "payment_failed", "paypal": "payment_succeeded",
                 "india": "payment_succeeded", "commitment": "tax_invoice"}
CARDS_OK = ("4242424242424242", "5555555555554444")
CARD_DECLINED = "4000000000000002"  # SCENARIOS.md: every charge declined (card_declined)
CARD_INDIA = "4000003560000123"  # SCENARIOS.md: issued in India, RBI mandate flow, charged in INR
INR_RATE = Decimal("83.20")
# (country, state) outside India: taxed and untaxed, with and without a subdivision that matters.
ADDRESSES = [("US", "NY"), ("US", "CA"), ("DE", "Berlin"), ("FR", "Paris"), ("GB", "London"), ("CA", "ON"),
             ("CA", "QC"), ("AU", "NSW"), ("JP", "Tokyo"), ("SG", "Singapore"), ("NL", "Utrecht")]
# (service, sku, unit, unit price, most in a month, decimal places of the quantity)
SKUS = [("Atlas Dedicated", "ATLAS_AWS_INSTANCE_M10", "hours", Decimal("0.08"), 744, 2),
        ("Atlas Dedicated", "ATLAS_AWS_INSTANCE_M30", "hours", Decimal("0.54"), 744, 2),
        ("Data Transfer", "XFER-REGION", "GB", Decimal("0.02"), 5_000, 6),
        ("Backup", "SNAPSHOT", "GB-days", Decimal("0.000125"), 300_000, 3),
        ("Atlas Search", "S20", "hours", Decimal("0.12"), 744, 2)]
# India: small charges (below INR 15,000 with GST, no authorization step, E4) within the USD 1,400 mandate.
INDIA_SKUS = [("Atlas Dedicated", "ATLAS_AWS_INSTANCE_M10", "hours", Decimal("0.08"), 744, 2),
              ("Data Transfer", "XFER-REGION", "GB", Decimal("0.02"), 1_000, 6)]
PROJECTS = ["web", "api", "etl"]


# --- the organizations ------------------------------------------------------------------------------------------


def kind_of(i: int) -> str:
    """Interleaved (the month-end pages by organization id): of every 20, 14 card, 2 PayPal, 2 credits, 1 India,
    1 commitment; one card organization in 20 is declined."""
    slot = i % 20
    if slot < 14:
        return "declined" if ((i // 20) * 14 + slot) % 20 == 19 else "card"
    return ("paypal", "paypal", "credits", "credits", "india", "commitment")[slot - 14]


def org_id_of(i: int) -> str:
    return f"me-{i:06d}"


@dataclass(frozen=True)
class OrgSpec:
    """One organization's data, a function of its index only: a twin under another id has the same."""

    index: int
    org_id: str
    kind: str
    period: str

    @property
    def domain(self) -> str:
        return f"{self.org_id}.bench.example.com"

    def first_day(self) -> date:
        return date.fromisoformat(f"{self.period}-01")

    def organization(self):  # noqa: ANN201
        from billing.profiles import OrganizationIn

        country, state = ("IN", "Karnataka") if self.kind == "india" else ADDRESSES[self.index % len(ADDRESSES)]
        card = {"type": "card", "exp": "12/30", "cvc": "123", "name": f"Bench {self.index}"}
        method = {"card": {**card, "number": CARDS_OK[self.index % 2]},
                  "credits": {**card, "number": CARDS_OK[self.index % 2]},
                  "declined": {**card, "number": CARD_DECLINED},
                  "india": {**card, "number": CARD_INDIA},
                  "paypal": {"type": "paypal", "email": f"pay@{self.domain}"}}.get(self.kind)
        return OrganizationIn.model_validate({
            "id": self.org_id, "name": f"Bench {self.index}", "owners": [f"owner@{self.domain}"],
            "billing_admins": [f"billing@{self.domain}"],
            "billing_profile": {"country": country, "state": state, "city": "City",
                                "address_line1": f"{self.index} Main Street", "postal_code": "12345",
                                "billing_email": f"ap@{self.domain}"},
            "payment_method": method})

    def usage(self) -> list:
        from billing.invoicing import last_day_of
        from services.client import UsageIn

        rnd = random.Random(self.index)
        skus = INDIA_SKUS if self.kind == "india" else [SKUS[rnd.randrange(len(SKUS))] for _ in range(3)]
        lines = []
        for n, (service, sku, unit, price, most, places) in enumerate(skus):
            quantity = Decimal(rnd.randrange(most * 10**places // 10, most * 10**places + 1)).scaleb(-places)
            project = PROJECTS[n % len(PROJECTS)]
            lines.append(UsageIn(key=f"{project}:cluster{n}:{sku}:{self.period}", project=project,
                                 deployment=f"cluster{n}", service=service, sku=sku, start_date=self.first_day(),
                                 end_date=last_day_of(self.period), quantity=quantity, unit=unit, unit_price=price))
        return lines

    def credit(self):  # noqa: ANN201
        from services.client import CreditLineIn

        if self.kind != "credits":
            return None
        return CreditLineIn(amount=Decimal("5000.00"), start=self.first_day(),
                            end=self.first_day() + timedelta(days=365), kind="promotional")

    def subscription(self):  # noqa: ANN201
        from billing.subscriptions import SubscriptionType
        from services.client import SubscriptionIn

        if self.kind != "commitment":
            return None
        return SubscriptionIn(type=SubscriptionType.MONTHLY_COMMITMENT, term_start=self.first_day(), term_months=12,
                              commitment=Decimal("24000.00"))


async def seed_real(billing, spec: OrgSpec) -> None:  # noqa: ANN001
    """The product's own path, as the simulator takes it for a scenario's organization."""
    await billing.create_organization(spec.organization())
    if spec.subscription() is not None:
        await billing.add_subscription(spec.org_id, spec.subscription())
    if spec.credit() is not None:
        await billing.add_credit_line(spec.org_id, spec.credit())
    await billing.record_usage(spec.org_id, spec.usage())


class BulkRows:
    """The rows the real path writes for an organization, built from the same table models (so their defaults
    apply), with the values the gateway and the activities would give them."""

    def __init__(self, next_method_id: int, next_invoice_id: int, at: datetime) -> None:
        self.rows: dict[str, list[dict]] = {}
        self.method_id, self.invoice_id, self.at = next_method_id, next_invoice_id, at

    def _add(self, row) -> None:  # noqa: ANN001
        values = {k: (v.value if isinstance(v, Enum) else v) for k, v in row.model_dump().items()}
        if values.get("id", 0) is None:
            del values["id"]  # the database numbers it
        self.rows.setdefault(row.__tablename__, []).append(values)

    def add(self, spec: OrgSpec) -> None:
        from billing.cards import CardIn
        from billing.emails import billing_recipients, render
        from billing.invoicing import CLOUD_CURRENCY, invoice_number, price_usage
        from billing.money import round_money
        from store.cycle import ZERO, cloud_invoice_key
        from store.gateway import _DEFAULT_CARD, TEST_CARDS, VERIFICATION_AMOUNT, TokenizedMethod
        from store.tables import (BillingProfile, CreditLine, EmailMessage, Invoice, InvoiceStatus, Mandate,
                                  Organization, OrgMember, PaymentMethod, Role, SandboxCharge, SandboxMandate,
                                  SandboxToken, Subscription, UsageLine)
        from activities.rbi import MANDATE_LIMIT
        from billing.statuses import BillingMode

        at, org = self.at, spec.organization()
        self._add(Organization(id=org.id, name=org.name, created_at=at))
        for email in org.owners:
            self._add(OrgMember(org_id=org.id, email=email, role=Role.ORG_OWNER))
        for email in org.billing_admins:
            self._add(OrgMember(org_id=org.id, email=email, role=Role.ORG_BILLING_ADMIN))
        self._add(BillingProfile(org_id=org.id, updated_at=at, **org.billing_profile.model_dump()))
        method = org.payment_method
        if isinstance(method, CardIn):  # SandboxGateway.tokenize_card: the vault, a 1.00 USD check refunded (A5)
            test_card = TEST_CARDS.get(method.pan(), _DEFAULT_CARD)
            token = "tok_" + secrets.token_hex(12)
            self._add(SandboxToken(token=token, kind="card", behaviour=test_card.behaviour, brand=method.brand,
                                   last4=method.last4, issuing_country=test_card.issuing_country, created_at=at))
            charge_id = "ch_" + secrets.token_hex(12)
            amount = round_money(VERIFICATION_AMOUNT, "USD")
            self._add(SandboxCharge(id=charge_id, idempotency_key=f"verify:{token}", token=token, kind="charge",
                                    amount=amount, currency="USD", outcome="succeeded", failure_code=None,
                                    created_at=at))
            self._add(SandboxCharge(id="re_" + secrets.token_hex(12), idempotency_key=f"verify-refund:{token}",
                                    token=token, kind="refund", amount=amount, currency="USD", outcome="succeeded",
                                    refund_of=charge_id, created_at=at))
            tokenized = TokenizedMethod(token=token, kind="card", brand=method.brand, last4=method.last4,
                                        exp_month=method.exp_month, exp_year=method.exp_year,
                                        issuing_country=test_card.issuing_country)
        elif method is not None:  # SandboxGateway.tokenize_paypal
            token = "tok_pp_" + secrets.token_hex(10)
            self._add(SandboxToken(token=token, kind="paypal", behaviour="succeed", created_at=at))
            tokenized = TokenizedMethod(token=token, kind="paypal", paypal_email=method.email)
        else:
            tokenized = None
        if tokenized is not None:
            method_id, self.method_id = self.method_id, self.method_id + 1
            self._add(PaymentMethod(id=method_id, org_id=org.id, created_at=at, **tokenized.model_dump()))
        if tokenized is not None and tokenized.issuing_country == "IN":  # RegisterMandateWorkflow (E1)
            mandate_id = "md_" + secrets.token_hex(10)
            self._add(SandboxMandate(id=mandate_id, token=tokenized.token, limit_usd=MANDATE_LIMIT, created_at=at))
            self._add(Mandate(org_id=org.id, payment_method_id=method_id, gateway_mandate_id=mandate_id,
                              registration_key=f"mandate:pm:{method_id}", limit=MANDATE_LIMIT, currency="USD",
                              registered_at=at))
            data = {"limit": str(MANDATE_LIMIT), "currency": "USD", "last4": tokenized.last4 or ""}
            content = render("mandate_registered", org.id, data)
            recipients = billing_recipients(owners=org.owners, billing_admins=org.billing_admins,
                                            billing_email=org.billing_profile.billing_email,
                                            only_invoice_emails=org.billing_profile.only_invoice_emails)
            self._add(EmailMessage(key=f"mandate_registered:{mandate_id}", org_id=org.id, kind="mandate_registered",
                                   recipients=json.dumps(recipients), subject=content.subject, body=content.body,
                                   created_at=at, delivered_at=at, attempts=1))
        sub = spec.subscription()
        if sub is not None:
            self._add(Subscription(org_id=org.id, created_at=at, status="ACTIVE", **sub.model_dump()))
        credit = spec.credit()
        if credit is not None:
            self._add(CreditLine(org_id=org.id, position=0, kind=credit.kind, amount=credit.amount,
                                 start_date=credit.start, end_date=credit.end))
        lines = spec.usage()
        for line in lines:
            self._add(UsageLine(org_id=org.id, period=spec.period, **line.model_dump()))
        usage = price_usage([(u.project, u.service, u.quantity, u.unit_price) for u in lines]).usage
        invoice_id, self.invoice_id = self.invoice_id, self.invoice_id + 1
        self._add(Invoice(id=invoice_id, key=cloud_invoice_key(org.id, spec.period),
                          number=invoice_number(spec.period, invoice_id), org_id=org.id, kind="cloud",
                          period=spec.period, status=InvoiceStatus.PENDING, currency=CLOUD_CURRENCY, usage=usage,
                          billed_usage=usage, tax=ZERO, total=usage, amount_due=usage, created_at=at,
                          billing_mode=BillingMode.CARD, credits_applied=ZERO, invoiced=ZERO))


def _next_ids(db) -> tuple[int, int]:  # noqa: ANN001
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return (conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM payment_methods")).scalar(),
                conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM invoices")).scalar())


# Parents before children: the order the foreign keys need.
TABLE_ORDER = ["organizations", "org_members", "billing_profiles", "sandbox_tokens", "sandbox_charges",
               "payment_methods", "sandbox_mandates", "mandates", "email_outbox", "subscriptions", "credit_lines",
               "usage_lines", "invoices"]


def write_bulk(db, rows: dict[str, list[dict]]) -> None:  # noqa: ANN001
    """SQLite: one executemany per table through the table models' column types. PostgreSQL: COPY per table."""
    from sqlmodel import SQLModel

    unknown = set(rows) - set(TABLE_ORDER)
    assert not unknown, f"no bulk order for {unknown}"
    if db.engine.dialect.name != "postgresql":
        with db.engine.begin() as conn:
            for name in TABLE_ORDER:
                if rows.get(name):
                    conn.execute(SQLModel.metadata.tables[name].insert(), rows[name])
        return
    raw = db.engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            for name in TABLE_ORDER:
                batch = rows.get(name)
                if not batch:
                    continue
                columns = list(batch[0])
                quoted = ", ".join(f'"{c}"' for c in columns)  # `limit` is a column name
                with cur.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row([row[c] for c in columns])
            for name in ("payment_methods", "invoices"):  # ids given here: the sequences move past them
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
        raw.driver_connection.commit()
    finally:
        raw.close()


# --- comparing a bulk-seeded organization with one seeded through the product ------------------------------------


_GATEWAY_IDS = re.compile(r"\b(tok_pp_|tok_|ch_|re_|md_)[0-9a-f]+")
_NUMBERS = re.compile(r"\b(INV|TAX)-\d{6}-\d+")
_KEYED_IDS = re.compile(r"(mandate:pm:)\d+")


def org_snapshot(db, org_id: str) -> dict[str, list[tuple]]:  # noqa: ANN001
    """Every row of every table that belongs to the organization (by org_id, or by its gateway tokens), with what
    differs by construction masked: row ids and foreign ids, gateway ids, invoice numbers, timestamps."""
    from sqlalchemy import select
    from sqlmodel import SQLModel

    tables = SQLModel.metadata.tables
    out: dict[str, list[tuple]] = {}
    with db.engine.connect() as conn:
        tokens = [t for (t,) in conn.execute(select(tables["payment_methods"].c.token)
                                             .where(tables["payment_methods"].c.org_id == org_id))]
        for name, table in tables.items():
            if "org_id" in table.c:
                query = select(table).where(table.c.org_id == org_id)
            elif name.startswith("sandbox_") and "token" in table.c:
                query = select(table).where(table.c.token.in_(tokens))
            else:
                continue
            rows = [tuple(sorted((k, _mask(k, v, org_id)) for k, v in row._mapping.items()))
                    for row in conn.execute(query)]
            if rows:
                out[name] = sorted(rows, key=repr)
    return out


def _mask(column: str, value: object, org_id: str) -> object:
    if value is None:
        return None
    if isinstance(value, datetime):
        return "<timestamp>"
    if column == "id" or (column.endswith("_id") and column != "org_id" and not isinstance(value, str)):
        return "<id>"
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, str):
        value = _GATEWAY_IDS.sub(lambda m: f"<{m.group(1)}…>", value)
        value = _NUMBERS.sub(lambda m: f"<{m.group(1)}-number>", value)
        value = _KEYED_IDS.sub(lambda m: f"{m.group(1)}<id>", value)
        return value.replace(org_id, "<org>")
    return value


def compare(db, real: str, bulk: str) -> list[str]:  # noqa: ANN001
    """Differences between two organizations' rows, table by table; empty when they are the same."""
    a, b = org_snapshot(db, real), org_snapshot(db, bulk)
    problems = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            problems.append(f"{name}: real {a.get(name)} != bulk {b.get(name)}")
    return problems


def snapshot_size(db, org_id: str) -> tuple[int, int]:  # noqa: ANN001
    snap = org_snapshot(db, org_id)
    return len(snap), sum(len(rows) for rows in snap.values())


def delete_orgs(db, org_ids: Sequence[str]) -> None:  # noqa: ANN001
    from sqlalchemy import delete, select
    from sqlmodel import SQLModel

    tables = SQLModel.metadata.tables
    with db.engine.begin() as conn:
        tokens = [t for (t,) in conn.execute(select(tables["payment_methods"].c.token)
                                             .where(tables["payment_methods"].c.org_id.in_(org_ids)))]
        for table in reversed(SQLModel.metadata.sorted_tables):
            if "org_id" in table.c:
                conn.execute(delete(table).where(table.c.org_id.in_(org_ids)))
            elif table.name.startswith("sandbox_") and "token" in table.c:
                conn.execute(delete(table).where(table.c.token.in_(tokens)))
        conn.execute(delete(tables["organizations"]).where(tables["organizations"].c.id.in_(org_ids)))


# --- the gateway ------------------------------------------------------------------------------------------------


def make_gateway(db, rbi_processing: timedelta):  # noqa: ANN001, ANN201
    """The one place the gateway is built. The benchmark uses, besides what the worker uses, the issuer's side
    (next_webhook_at, due_webhooks, webhook_delivered) and the ledger (charges); the bulk seeding writes the sandbox
    gateway's vault and ledger rows into our database. A gateway service at BILLING_GATEWAY_URL would need its own
    bulk seeding of its vault, so it is refused here rather than measured half-seeded."""
    from store.gateway import SandboxGateway

    if os.environ.get("BILLING_GATEWAY_URL"):
        raise SystemExit("BILLING_GATEWAY_URL is set: this benchmark seeds the in-process sandbox gateway's vault in "
                         "our database and cannot seed a gateway service's; unset it")
    return SandboxGateway(db, rbi_processing=rbi_processing)


async def deliver_issuer_webhooks(billing, gateway, stop: asyncio.Event,  # noqa: ANN001
                                  delivered: list[float]) -> None:
    """The sandbox issuer's side of India charges, as starter.gateway_service.GatewayWebhookSender runs it under
    make run (poll at most every POLL, sleep until the next one is due), each webhook handed to what our endpoint does
    (BillingClient.handle_gateway_webhook), as the simulator delivers them."""
    from starter.gateway_service import POLL

    while not stop.is_set():
        due = await asyncio.to_thread(gateway.next_webhook_at)
        now = datetime.now(timezone.utc)
        if due is not None and due <= now:
            for webhook in await asyncio.to_thread(gateway.due_webhooks, now):
                await billing.handle_gateway_webhook(webhook.body, webhook.headers)
                await asyncio.to_thread(gateway.webhook_delivered, webhook.charge_id)
                delivered.append(time.time())
            continue
        wait = POLL if due is None else min(POLL, due - now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(wait.total_seconds(), 0.01))


# --- CPU of the other processes ---------------------------------------------------------------------------------


PG_BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum launcher",
                 "logical replication launcher", "io worker", "walsummarizer", "startup")


VISIBILITY_READS = ("List", "Count", "Get", "Scan")


def server_work(metrics_url: str) -> Counter:
    """What the Temporal server has done so far in namespace `default`, from its Prometheus metrics: state
    transitions (the unit a cluster is sized in), billable actions, visibility writes (starts, upserts, closes) and
    the history service's and matching's persistence requests. Counters: two readings subtract."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    work: Counter = Counter()
    for family in text_string_to_metric_families(httpx.get(metrics_url, timeout=10).text):
        for sample in family.samples:
            # The parser names a counter's samples <name>_total, as OpenMetrics does; the server's lines have none.
            name, labels, value = sample.name.removesuffix("_total"), sample.labels, sample.value
            if name == "visibility_persistence_requests":  # no namespace label: the dev server has one namespace
                if not labels.get("operation", "").startswith(VISIBILITY_READS):
                    work["visibility writes"] += value
            elif labels.get("namespace") != "default":
                continue
            elif name == "state_transition_count_count":  # one observation per persisted transition (the _sum
                work["state transitions"] += value  # adds up each workflow's running total, not the transitions)
            elif name == "action":
                work["actions"] += value
            elif name == "persistence_requests" and labels.get("service_name") in ("history", "matching"):
                work[f"{labels['service_name']} persistence requests"] += value
    return work


def work_line(before: Counter, after: Counter, count: int) -> str:
    return ", ".join(f"{(after[k] - before[k]) / count:.1f} {k}" for k in
                     ("state transitions", "actions", "visibility writes", "history persistence requests",
                      "matching persistence requests"))


class ServerCpu(threading.Thread):
    """CPU seconds of the Temporal dev server (ours: its cmdline names our --db-filename), PostgreSQL (the backends
    of our database and the server's shared background processes; other databases' clients are not counted) and the
    SMTP sink, from /proc, sampled every half second so that a backend that exits is counted up to its last sample."""

    def __init__(self, temporal_marker: str, pg_database: str | None, smtp_pid: int | None) -> None:
        super().__init__(name="server-cpu", daemon=True)
        self.temporal_marker, self.pg_database, self.smtp_pid = temporal_marker, pg_database, smtp_pid
        self.base: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def component(self, pid: int, comm: str) -> str | None:
        if pid == self.smtp_pid:
            return "smtp sink"
        if comm not in ("temporal", "postgres"):
            return None
        try:
            args = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        if comm == "temporal":
            return "temporal" if self.temporal_marker in args else None
        if self.pg_database is None:
            return None
        words = args.split()
        if self.pg_database in words or args.startswith("/") or any(args.rstrip().endswith(": " + name)
                                                                     for name in PG_BACKGROUND):
            return "postgres"
        return None

    def read(self) -> dict[int, tuple[str, float]]:
        found = {}
        for pid, comm, seconds in process_cpu():
            kind = self.component(pid, comm)
            if kind is not None:
                found[pid] = (kind, seconds)
        return found

    def mark(self) -> None:
        """Start a window: what the processes have used so far is not counted."""
        now = self.read()
        with self.lock:
            self.base = {pid: used for pid, (_, used) in now.items()}
            self.last = dict(now)

    def used(self) -> dict[str, float]:
        """CPU seconds per component since mark()."""
        self._sample()
        totals = {"temporal": 0.0, "postgres": 0.0, "smtp sink": 0.0}
        with self.lock:
            for pid, (kind, used) in self.last.items():
                totals[kind] += used - self.base.get(pid, 0.0)
        return totals

    def _sample(self) -> None:
        now = self.read()
        with self.lock:
            self.last.update(now)

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self._sample()


# --- the SMTP sink and what reached it -------------------------------------------------------------------------


class Mailbox:
    """What the SMTP sink reported: (org, kind) -> wall times of the messages received."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, str], list[float]] = {}
        self.unknown: list[str] = []

    def add(self, line: str) -> None:
        at, message_id, recipients = line.rstrip("\n").split("\t")
        kind = message_id.split(".", 1)[0]
        org = None
        for rcpt in recipients.split(","):
            match = re.fullmatch(r"[^@]+@([a-z0-9_-]+)\.bench\.example\.com", rcpt)
            if match:
                org = match.group(1)
                break
        if org is None:
            self.unknown.append(line)
            return
        self.received.setdefault((org, kind), []).append(float(at))

    def count(self) -> int:
        return sum(len(times) for times in self.received.values())


@contextlib.asynccontextmanager
async def smtp_sink(mailbox: Mailbox):  # noqa: ANN201
    from starter.processes import free_port

    port = free_port()
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.smtp_sink", str(port),
                                                 stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    ready = await asyncio.wait_for(child.stdout.readline(), 30)
    if ready.strip() != b"ready":
        raise RuntimeError(f"the SMTP sink did not start: {ready!r}")

    async def read() -> None:
        while line := await child.stdout.readline():
            mailbox.add(line.decode())

    reader = asyncio.create_task(read())
    try:
        yield port, child.pid
    finally:
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)
        await reader


# --- progress in our database -----------------------------------------------------------------------------------


class Progress(threading.Thread):
    """Polls our database: when every cloud invoice of the period was settled, and when every charged invoice's
    payment was decided (PAID or FAILED). Its own connection; each poll ends its transaction."""

    def __init__(self, db, period: str, orgs: int, payable: int) -> None:  # noqa: ANN001
        from sqlalchemy import text

        super().__init__(name="progress", daemon=True)
        self.db, self.period, self.orgs, self.payable = db, period, orgs, payable
        self.query = text(
            "SELECT (SELECT count(*) FROM invoices WHERE kind = 'cloud' AND period = :p AND status <> 'PENDING'), "
            "(SELECT count(DISTINCT p.invoice_id) FROM payments p JOIN invoices i ON i.id = p.invoice_id "
            " WHERE i.period = :p AND i.kind = 'cloud' AND p.method IN ('card', 'paypal') "
            " AND p.status IN ('PAID', 'FAILED'))")
        self.settled_at: float | None = None
        self.decided_at: float | None = None
        self.settled = self.decided = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.db.engine.connect() as conn:
            while not self.stopping.wait(POLL_SECONDS):
                self.settled, self.decided = conn.execute(self.query, {"p": self.period}).one()
                conn.rollback()
                now = time.time()
                if self.settled_at is None and self.settled >= self.orgs:
                    self.settled_at = now
                if self.decided_at is None and self.decided >= self.payable:
                    self.decided_at = now


# --- where the time goes ----------------------------------------------------------------------------------------


def _event_seconds(event) -> float:  # noqa: ANN001
    return event.event_time.seconds + event.event_time.nanos / 1e9


async def _history_points(client, workflow_id: str, prefix: str) -> tuple[list[tuple[str, float]], int]:  # noqa: ANN001
    from temporalio.api.enums.v1 import EventType as E

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    names: dict[int, str] = {}
    points, wft, marker = [], 0, 0
    for event in history.events:
        kind, at = event.event_type, _event_seconds(event)
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            points.append((f"{prefix} started", at))
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wft += 1
            points.append((f"{prefix} task {wft} picked up", at))
        elif kind == E.EVENT_TYPE_MARKER_RECORDED:
            attributes = event.marker_recorded_event_attributes
            if attributes.marker_name != "core_local_activity":
                continue  # a patch marker (workflow.patched): no time of its own
            try:  # the SDK core's own JSON (activity type and id), not a payload of ours: never encrypted
                name = json.loads(attributes.details["data"].payloads[0].data)["activity_type"]
            except (KeyError, IndexError, ValueError):
                name = f"local activity {marker + 1}"
            marker += 1
            points.append((f"{prefix} {name} (local) done", at))
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            names[event.event_id] = name
            points.append((f"{prefix} {name} scheduled", at))
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            name = names.get(event.activity_task_started_event_attributes.scheduled_event_id, "activity")
            points.append((f"{prefix} {name} started", at))
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name = names.get(event.activity_task_completed_event_attributes.scheduled_event_id, "activity")
            points.append((f"{prefix} {name} completed", at))
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            points.append((f"{prefix} signal {event.workflow_execution_signaled_event_attributes.signal_name}", at))
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            points.append((f"{prefix} completed", at))
    return points, len(history.events)


@dataclass
class Sampled:
    kind: str
    points: list[tuple[str, float]]
    events: dict[str, int]  # history events per workflow: what the history service writes for this organization


async def sample_timelines(client, db, period: str, orgs: dict[str, str],  # noqa: ANN001
                           mailbox: Mailbox, began: float,
                           per_kind: int) -> list[Sampled]:
    """Each sampled organization's settlement and payment histories, with the e-mail's arrival at the SMTP sink,
    in time order from the month-end's start."""
    from sqlalchemy import text

    from contracts.flows import payment_workflow_id, settlement_workflow_id

    by_kind: dict[str, list[str]] = {}
    for org, kind in sorted(orgs.items()):
        by_kind.setdefault(kind, []).append(org)
    with db.engine.connect() as conn:
        numbers = dict(conn.execute(text("SELECT org_id, number FROM invoices WHERE kind = 'cloud' AND period = :p"),
                                    {"p": period}).all())
    samples = []
    for kind, members in by_kind.items():
        step = max(1, len(members) // per_kind)
        for org in members[::step][:per_kind]:
            points = [("month-end started", began)]
            settlement, events = await _history_points(client, settlement_workflow_id(org, period), "settlement")
            points += settlement
            counts = {"settlement": events}
            if kind in PAYABLE or kind == "commitment":
                payment, counts["payment"] = await _history_points(client, payment_workflow_id(numbers[org]),
                                                                   "payment")
                points += payment
            mail = mailbox.received.get((org, EXPECTED_MAIL.get(kind, "")))
            if mail:
                points.append(("e-mail at the SMTP server", mail[0]))
            points.sort(key=lambda p: p[1])
            samples.append(Sampled(kind, points, counts))
    return samples


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _between(points: list[tuple[str, float]], start: str, end: str) -> float | None:
    times = dict(points)  # these labels occur once in a timeline
    if start in times and end in times:
        return times[end] - times[start]
    return None


def summary_lines(samples: Sequence[Sampled]) -> list[str]:
    """Per kind, medians of: the wait for the settlement to start, the settlement, the payment's charge (with the
    issuer's notice period for India), the outcome e-mail from its activity's scheduling to the SMTP server."""
    lines = [f"  {'where the time goes':<21}median seconds over the sample (p90); from each workflow's history "
             "and the SMTP sink's clock"]
    head = ["start wait", "settlement", "to payment", "charge", "issuer", "after charge", "e-mail", "total"]
    lines.append(f"  {'kind (sampled)':<21}" + "".join(f"{h:>14}" for h in head))
    for kind in KINDS:
        group = [s.points for s in samples if s.kind == kind]
        if not group:
            continue
        charge_end = "payment charge_payment completed"
        columns = {
            "start wait": [_between(p, "month-end started", "settlement started") for p in group],
            "settlement": [_between(p, "settlement started", "settlement completed") for p in group],
            "to payment": [_between(p, "settlement started", "payment started") for p in group],
            "charge": [_between(p, "payment charge_payment scheduled", charge_end) for p in group],
            "issuer": [_between(p, charge_end, "payment signal gateway_outcome") for p in group],
            "after charge": [_after_charge(p) for p in group],
            "e-mail": [_email(p) for p in group],
            "total": [_between(p, "month-end started", "e-mail at the SMTP server") for p in group],
        }
        cells = []
        for name in head:
            values = [v for v in columns[name] if v is not None]
            cells.append(f"{statistics.median(values):7.2f} ({percentile(values, 90):5.2f})" if values else
                         f"{'-':>14}")
        lines.append(f"  {f'{kind} ({len(group)})':<21}" + "".join(f"{c:>14}" for c in cells))
    events = []
    for kind in KINDS:
        group = [s.events for s in samples if s.kind == kind]
        if group:
            events.append(f"{kind} " + " + ".join(f"{statistics.median(g[w] for g in group):.0f} {w}"
                                                  for w in group[0]))
    lines.append(f"  {'history events':<21}median per organization: " + "; ".join(events))
    lines.append("  (start wait: month-end start to the settlement's start; to payment: settlement start to the "
                 "payment workflow's start; charge: charge_payment scheduled to completed; issuer: India's PROCESSING "
                 "until the "
                 "webhook's signal; after charge: the charge's completion, or the issuer's signal, to the e-mail "
                 "activity's scheduling; e-mail: send_email scheduled to the message at the SMTP server)")
    return lines


def _last_send_email_scheduled(points: list[tuple[str, float]]) -> float | None:
    times = [t for label, t in points if label.endswith("send_email scheduled")]
    return times[-1] if times else None


def _after_charge(points: list[tuple[str, float]]) -> float | None:
    times = dict(points)
    start = times.get("payment signal gateway_outcome", times.get("payment charge_payment completed"))
    end = _last_send_email_scheduled(points)
    return None if start is None or end is None else end - start


def _email(points: list[tuple[str, float]]) -> float | None:
    times = dict(points)
    start = _last_send_email_scheduled(points)
    end = times.get("e-mail at the SMTP server")
    return None if start is None or end is None else end - start


def detail_lines(samples: Sequence[Sampled], kind: str) -> list[str]:
    """Median time between consecutive steps over the sampled organizations of `kind` whose steps came in the most
    common order."""
    shapes: dict[tuple[str, ...], list[list[tuple[str, float]]]] = {}
    for sample in samples:
        if sample.kind == kind:
            shapes.setdefault(tuple(label for label, _ in sample.points), []).append(sample.points)
    if not shapes:
        return []
    shape, group = max(shapes.items(), key=lambda item: len(item[1]))
    total = sum(len(g) for g in shapes.values())
    lines = [f"  steps of {kind}         median ms between consecutive steps over {len(group)}/{total} sampled "
             "organizations with the same order of steps (p90)"]
    for i in range(1, len(shape)):
        deltas = [(points[i][1] - points[i - 1][1]) * 1000 for points in group]
        lines.append(f"    {shape[i - 1]:>46} -> {shape[i]:<46} {percentile(deltas, 50):>9.1f}"
                     f"  ({percentile(deltas, 90):.1f})")
    return lines


# --- the benchmark ----------------------------------------------------------------------------------------------


@dataclass
class Options:
    orgs: int = 10_000
    database_url: str | None = None
    bare: int = 2_000
    progress: float = 60.0
    sample: int = 20
    rbi_processing: str = "5s"
    detail: bool = False
    keep: bool = False
    log_level: str = "WARNING"


@contextlib.contextmanager
def our_database(opts: Options, tmp: Path) -> Iterator[tuple[str, str | None]]:
    """(SQLAlchemy URL, PostgreSQL database name or None): a SQLite file in `tmp`, or a fresh PostgreSQL database on
    the server of --database-url, migrated to head and dropped afterwards (unless --keep)."""
    from sqlalchemy.engine import make_url

    from store import migrate

    if not opts.database_url or not opts.database_url.startswith("postgresql"):
        url = opts.database_url or f"sqlite:///{tmp / 'store.db'}"
        migrate.upgrade(url)
        yield url, None
        return
    import psycopg

    server = make_url(opts.database_url)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bench_month_end_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url, name
    finally:
        if not opts.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle_database(db) -> None:  # noqa: ANN001
    """After the bulk load and before anything is timed: planner statistics, hint bits and the visibility map set,
    dirty pages written out (PostgreSQL); the WAL folded into the database file (SQLite)."""
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
    else:
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


async def wait_until_quiet(client, task_queue: str, limit: float = 3600.0) -> float:  # noqa: ANN001
    """Wait until the organizations' workflows have run their first task: the task queue's workflow and activity
    backlogs are empty (the server's approximate counts, twice in a row) and this process (worker included) uses
    under 5% of a core over a second. Returns the seconds waited.

    The process's CPU alone is not enough: at N = 10,000 and more the dev server, not the worker, is the slower
    side, and thousands of first tasks can wait in its backlog while the worker idles. A backlog left over would
    be drained during the bare workflow's and the month-end's measurements, slowing both."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    async def backlog() -> int:
        total = 0
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind,
                report_stats=True))
            total += response.stats.approximate_backlog_count
        return total

    began = time.perf_counter()
    empty = 0
    while time.perf_counter() - began < limit:
        cpu = time.process_time()
        await asyncio.sleep(1.0)
        idle = time.process_time() - cpu < 0.05
        empty = empty + 1 if await backlog() == 0 else 0
        if idle and empty >= 2:
            return time.perf_counter() - began
    raise RuntimeError(f"the organizations' first workflow tasks were still queued after {limit:.0f} s")


async def bench(opts: Options) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from temporalio.api.sdk.v1 import WorkflowMetadata
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
    from concurrent.futures import ThreadPoolExecutor

    from activities.email import SmtpSettings
    from billing.config import parse_duration
    from billing.invoicing import last_closed_period
    from bench.payment import dev_server_output_on_stderr
    from contracts.clock import ClockInterceptor
    from contracts.codec import data_converter
    from contracts.flows import SEARCH_ATTRIBUTES, TASK_QUEUE
    from contracts.start import start_org_billing
    from services.client import BillingClient
    from starter.processes import binary, free_port
    from store.db import Database
    from worker import build_worker

    period = last_closed_period(datetime.now(timezone.utc))
    seed_at = datetime.combine(date.fromisoformat(f"{period}-01"), clock_time(0), tzinfo=timezone.utc)
    rbi_processing = parse_duration(opts.rbi_processing)
    specs = [OrgSpec(i, org_id_of(i), kind_of(i), period) for i in range(opts.orgs)]
    kinds = {s.org_id: s.kind for s in specs}
    mix = Counter(s.kind for s in specs)
    real = {}
    for spec in specs:
        real.setdefault(spec.kind, spec)
    payable = sum(mix[k] for k in PAYABLE)

    compile_project()
    print(f"Month-end to cash benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}, period {period}, "
          f"{opts.orgs} organizations, 1-minute load average {os.getloadavg()[0]:.2f} at start")
    print(f"  mix                  " + ", ".join(f"{k} {mix[k]}" for k in KINDS))
    mailbox = Mailbox()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-month-end-")))
        url, pg_name = stack.enter_context(our_database(opts, tmp))
        db = Database(url)
        stack.callback(db.dispose)
        gateway = make_gateway(db, rbi_processing)
        temporal_db = tmp / "temporal.db"
        print(f"  our database         {make_url(url).render_as_string(hide_password=True)}")
        print(f"  temporal             dev server on a SQLite file ({temporal_db}), as make run; worker.build_worker "
              "in this process, sandbox gateway in-process")
        print(f"  India                issuer's notice period {rbi_processing.total_seconds():.0f} s "
              "(BILLING_RBI_PROCESSING); webhooks delivered as make run's sender does (poll 1 s)")

        async with smtp_sink(mailbox) as (smtp_port, smtp_pid):
            with dev_server_output_on_stderr():
                metrics_port = free_port()
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=binary("temporal"), search_attributes=SEARCH_ATTRIBUTES,
                    data_converter=data_converter(), interceptors=[ClockInterceptor()],
                    dev_server_database_filename=str(temporal_db),
                    dev_server_extra_args=["--metrics-port", str(metrics_port)])
                metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            async with env:
                client = env.client
                cpu_meter = ServerCpu(str(temporal_db), pg_name, smtp_pid)
                cpu_meter.start()

                async def clock() -> datetime:  # the organizations were created during the period
                    return seed_at

                worker = build_worker(client, db, gateway, SmtpSettings(host="127.0.0.1", port=smtp_port))
                billing = BillingClient(client, db, gateway)
                seeding = BillingClient(client, db, gateway, clock=clock)
                async with worker:
                    # --- seeding ---
                    began = time.perf_counter()
                    await seeding.record_fx_rate("INR", INR_RATE, seed_at)
                    for spec in real.values():
                        await seed_real(seeding, spec)
                    real_seconds = time.perf_counter() - began

                    began = time.perf_counter()
                    bulk = BulkRows(*await asyncio.to_thread(_next_ids, db), at=seed_at)
                    twins = {}
                    for spec in real.values():
                        twin = OrgSpec(spec.index, f"{spec.org_id}-twin", spec.kind, period)
                        twins[spec.org_id] = twin.org_id
                        bulk.add(twin)
                    real_ids = {s.org_id for s in real.values()}
                    for spec in specs:
                        if spec.org_id not in real_ids:
                            bulk.add(spec)
                    rows = sum(len(r) for r in bulk.rows.values())
                    await asyncio.to_thread(write_bulk, db, bulk.rows)
                    bulk_seconds = time.perf_counter() - began
                    differences = []
                    sizes = {}
                    for org, twin in twins.items():
                        differences += [f"{kinds[org]}: {d}" for d in await asyncio.to_thread(compare, db, org, twin)]
                        sizes[kinds[org]] = await asyncio.to_thread(snapshot_size, db, org)
                    await asyncio.to_thread(delete_orgs, db, list(twins.values()))
                    if differences:
                        raise SystemExit("bulk seeding differs from the product's path:\n  " + "\n  ".join(differences))
                    print(f"  seeded               {len(real)} organizations through BillingClient "
                          f"({real_seconds:.1f} s: tokenize, create, mandate, subscription, credits, usage), "
                          f"{opts.orgs - len(real)} in bulk ({rows} rows, "
                          f"{'COPY' if pg_name else 'executemany'}, {bulk_seconds:.1f} s)")
                    print("  bulk = product       a bulk twin of each of those compared field by field (ids, gateway "
                          "ids, numbers, timestamps masked): identical; " +
                          ", ".join(f"{k} {t} tables/{r} rows" for k, (t, r) in sizes.items()))

                    began = time.perf_counter()
                    await gather_bounded(50, [start_org_billing(client, TASK_QUEUE, s.org_id, billing.durations)
                                              for s in specs if s.org_id not in real_ids])
                    started_seconds = time.perf_counter() - began
                    quiet = await wait_until_quiet(client, TASK_QUEUE)
                    await asyncio.to_thread(settle_database, db)
                    print(f"  organizations' flows {opts.orgs - len(real)} OrgBillingWorkflow started "
                          f"({started_seconds:.1f} s; first tasks done, backlog empty, after {quiet:.1f} s more)")
                    mails_before = mailbox.count()
                    mailbox.received.clear()

                    # --- the bare workflow, in the same run ---
                    bare_count = min(opts.bare, opts.orgs)
                    bare_worker = Worker(
                        client, task_queue="bench-bare", workflows=[BareWorkflow], activities=[noop],
                        activity_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="bare"),
                        max_concurrent_activities=32, workflow_runner=SandboxedWorkflowRunner(
                            restrictions=SandboxRestrictions.default.with_passthrough_modules("bench.settlement")))
                    async with bare_worker:
                        await run_bare(client, 20)  # warm-up
                        cpu_meter.mark()
                        bare_work = [server_work(metrics_url)]
                        bare_rate, bare_cpu = await run_bare(client, bare_count)
                        bare_servers = cpu_meter.used()
                        bare_work.append(server_work(metrics_url))

                    # --- month-end to cash ---
                    progress = Progress(db, period, opts.orgs, sum(mix[k] for k in ("card", "declined", "paypal",
                                                                                      "india")))
                    stop_issuer = asyncio.Event()
                    webhooks: list[float] = []
                    issuer = asyncio.create_task(deliver_issuer_webhooks(billing, gateway, stop_issuer, webhooks))
                    expected = {(org, EXPECTED_MAIL[kind]) for org, kind in kinds.items() if kind in EXPECTED_MAIL}
                    cpu_meter.mark()
                    month_end_work = [server_work(metrics_url)]
                    load_before = os.getloadavg()[0]
                    progress.start()
                    began, cpu = time.time(), time.process_time()
                    # The month-end workflow ends once it has started every settlement (30 minutes at N = 30,000 on
                    # this machine); settlements and payments run meanwhile, so progress is reported from the start.
                    starting = asyncio.create_task(billing.run_month_end(period))
                    month_end, started_at = None, None
                    guard = max(RESULT_TIMEOUT, RESULT_TIMEOUT_PER_ORG * opts.orgs)
                    deadline = began + guard.total_seconds()
                    next_report = began + opts.progress if opts.progress else None
                    while True:
                        if next_report is not None and time.time() >= next_report:
                            # A long run shows how far it got: its rate so far survives an interrupted run.
                            received = sum(1 for key in expected if key in mailbox.received)
                            print(f"  progress {time.time() - began:7.0f} s  settled {progress.settled}/{opts.orgs}, "
                                  f"charges decided {progress.decided}/{progress.payable}, e-mails "
                                  f"{received}/{len(expected)}", flush=True)
                            next_report += opts.progress
                        if started_at is None and starting.done():
                            month_end, started_at = starting.result(), time.time()
                        # The set comparison last: at N = 30,000 it is 27,000 lookups, not worth doing ten times
                        # a second before the database says every invoice is settled and every charge decided.
                        done = (started_at is not None and progress.settled_at and progress.decided_at
                                and expected.issubset(mailbox.received))
                        if done:
                            break
                        if issuer.done():  # the issuer's side failed: no India charge will ever settle
                            issuer.result()
                            raise RuntimeError("the issuer's webhook delivery stopped")
                        if time.time() > deadline:
                            starting.cancel()
                            missing = sorted(expected - set(mailbox.received))[:10]
                            raise RuntimeError(f"not done after {guard}: settled {progress.settled}, "
                                               f"decided {progress.decided}, missing e-mails e.g. {missing}")
                        await asyncio.sleep(0.1)
                    cpu = time.process_time() - cpu
                    servers = cpu_meter.used()
                    month_end_work.append(server_work(metrics_url))
                    load_after = os.getloadavg()[0]
                    stop_issuer.set()
                    progress.stopping.set()
                    await issuer
                    progress.join()
                    mail_times = {key: mailbox.received[key][0] for key in expected}
                    last_mail = max(mail_times.values())
                    ended = max(last_mail, progress.settled_at)
                    elapsed = ended - began
                    no_india = [t for (org, _), t in mail_times.items() if kinds[org] != "india"]
                    india = [t for (org, _), t in mail_times.items() if kinds[org] == "india"]
                    cash_without_india = max(max(no_india), progress.settled_at) - began

                    samples = await sample_timelines(client, db, period, kinds, mailbox, began, opts.sample)
                    lookups = []
                    for org in (real["card"].org_id, real["india"].org_id):
                        found = [w.workflow_type async for w in client.list_workflows(f"OrgId = '{org}'")]
                        lookups.append(f"OrgId = '{org}' -> {', '.join(sorted(found)) or 'nothing (visibility lag?)'}")
                    details = {}  # the operator's view: each payment's current details in words
                    for org in (real["card"].org_id, real["declined"].org_id, real["india"].org_id,
                                real["commitment"].org_id):
                        handle = client.get_workflow_handle(f"payment-{_number_of(db, org, period)}")
                        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
                        details[kinds[org]] = meta.current_details
                cpu_meter.stopping.set()

        rate = opts.orgs / elapsed
        print()
        print(f"  bare workflow        {bare_rate:7.1f} workflows/s  (3 no-op activities; {bare_count} workflows; "
              "50 starts in flight; as bench/settlement.py)")
        print(f"  month-end to cash    {rate:7.1f} organizations/s  ({opts.orgs} in {elapsed:.1f} s: every payable "
              f"invoice PAID or FAILED, every e-mail at the SMTP server; month-end started {month_end.started} "
              f"settlements in {started_at - began:.1f} s)")
        print(f"  without India's wait {opts.orgs / cash_without_india:7.1f} organizations/s  (all but the India "
              f"e-mails in {cash_without_india:.1f} s; India's last e-mail at {max(india) - began:.1f} s, its "
              f"notice period {rbi_processing.total_seconds():.0f} s, {len(webhooks)} webhooks)")
        print(f"  timeline (s)         settlements started {started_at - began:.1f}; all settled "
              f"{progress.settled_at - began:.1f}; all charges decided {progress.decided_at - began:.1f}; "
              f"last e-mail {last_mail - began:.1f}")
        print(f"  CPU per organization this process {cpu / opts.orgs * 1000:.1f} ms (client, worker, activities, "
              f"sandbox gateway, issuer webhooks); Temporal {servers['temporal'] / opts.orgs * 1000:.1f} ms; "
              + (f"PostgreSQL {servers['postgres'] / opts.orgs * 1000:.1f} ms; " if pg_name else
                 "SQLite in this process; ")
              + f"SMTP sink {servers['smtp sink'] / opts.orgs * 1000:.1f} ms")
        print(f"  CPU per bare workflow this process {bare_cpu * 1000:.1f} ms; Temporal "
              f"{bare_servers['temporal'] / bare_count * 1000:.1f} ms"
              + (f"; PostgreSQL {bare_servers['postgres'] / bare_count * 1000:.1f} ms" if pg_name else ""))
        print(f"  Temporal per org     {work_line(*month_end_work, opts.orgs)}  (the dev server's metrics)")
        print(f"  Temporal per bare    {work_line(*bare_work, bare_count)}")
        print(f"  machine load         {load_before:.2f} before, {load_after:.2f} after (1-minute load average, "
              "other helpers' processes included)")
        for line in summary_lines(samples):
            print(line)
        for kind in (KINDS if opts.detail else ("card",)):
            for line in detail_lines(samples, kind):
                print(line)
        for line in lookups:
            print(f"  found by OrgId       {line}")
        for kind, words in details.items():
            print(f"  details {kind:<12} {words}")

        outcome = check(db, period, kinds, mailbox, expected)
        for line in outcome:
            print(f"  correct              {line}")
        print(f"  e-mails              {mailbox.count()} at the SMTP sink during the month-end "
              f"({mails_before} while seeding, not counted): "
              + ", ".join(f"{k} {v}" for k, v in sorted(Counter(k for (_, k), t in mailbox.received.items()
                                                               for _ in t).items())))
        print(f"RATIO month-end-to-cash/bare = {rate / bare_rate:.2f}")


def _number_of(db, org: str, period: str) -> str:  # noqa: ANN001
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return conn.execute(text("SELECT number FROM invoices WHERE org_id = :o AND period = :p AND kind = 'cloud'"),
                            {"o": org, "p": period}).scalar_one()


def check(db, period: str, kinds: dict[str, str], mailbox: Mailbox,  # noqa: ANN001
          expected: set[tuple[str, str]]) -> list[str]:
    """Exactly one successful gateway charge per payable invoice except the declined ones (one failed charge
    each), the invoices' and payments' statuses, and each expected e-mail received once, nothing else."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        invoices = {org: (number, status) for org, number, status in conn.execute(text(
            "SELECT org_id, number, status FROM invoices WHERE kind = 'cloud' AND period = :p"), {"p": period})}
        payments = {}
        for org, status, method in conn.execute(text(
                "SELECT p.org_id, p.status, p.method FROM payments p JOIN invoices i ON i.id = p.invoice_id "
                "WHERE i.period = :p AND i.kind = 'cloud' AND p.method IN ('card', 'paypal')"), {"p": period}):
            payments.setdefault(org, []).append(status)
        ledger = conn.execute(text("SELECT idempotency_key, outcome FROM sandbox_charges WHERE kind = 'charge' "
                                   "AND idempotency_key LIKE 'INV-%'")).all()
    succeeded = Counter(key.rsplit(":", 1)[0] for key, outcome in ledger if outcome == "succeeded")
    failed = Counter(key.rsplit(":", 1)[0] for key, outcome in ledger if outcome == "failed")
    want_status = {"card": "PAID", "paypal": "PAID", "india": "PAID", "declined": "FAILED", "credits": "PREPAID",
                   "commitment": "INVOICED"}
    problems = []
    for org, kind in kinds.items():
        number, status = invoices[org]
        if status != want_status[kind]:
            problems.append(f"{org} ({kind}): invoice {number} is {status}, not {want_status[kind]}")
        charges = succeeded.get(number, 0)
        if charges != (1 if kind in ("card", "paypal", "india") else 0):
            problems.append(f"{org} ({kind}): {charges} successful gateway charges for {number}")
        if kind == "declined" and failed.get(number, 0) != 1:
            problems.append(f"{org} ({kind}): {failed.get(number, 0)} declined charges for {number}")
        if kind in PAYABLE and payments.get(org) != ["PAID" if kind != "declined" else "FAILED"]:
            problems.append(f"{org} ({kind}): payments {payments.get(org)}")
    for key in expected:
        if len(mailbox.received.get(key, [])) != 1:
            problems.append(f"{key}: {len(mailbox.received.get(key, []))} e-mails")
    unexpected = sorted(set(mailbox.received) - expected)
    if unexpected or mailbox.unknown:
        problems.append(f"unexpected e-mails: {unexpected[:10]} {mailbox.unknown[:3]}")
    assert not problems, "\n".join(problems[:30])
    statuses = Counter(status for _, status in invoices.values())
    return [f"invoices {dict(sorted(statuses.items()))}; {sum(succeeded.values())} successful gateway charges, one "
            f"per PAID invoice; {sum(failed.values())} declined, one per FAILED invoice",
            f"every expected e-mail received exactly once ({len(expected)}), none other"]


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.month_end", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=10_000, help="organizations (default 10,000)")
    parser.add_argument("--database-url", default=None,
                        help="our database: a SQLite URL, or a PostgreSQL server's URL (a fresh database is created "
                             "there), e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres; default: SQLite file")
    parser.add_argument("--bare", type=int, default=2_000,
                        help="bare workflows timed (a sample when fewer than --orgs)")
    parser.add_argument("--sample", type=int, default=20, help="organizations per kind whose histories are read")
    parser.add_argument("--rbi-processing", default=os.environ.get("BILLING_RBI_PROCESSING", "5s"),
                        help="India's notice period before the issuer's webhook (default BILLING_RBI_PROCESSING or 5s)")
    parser.add_argument("--detail", action="store_true", help="every kind's steps, not only the card's")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--progress", type=float, default=60.0,
                        help="seconds between progress lines while the month-end runs (0: none)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if args.orgs < 20:
        parser.error("--orgs must be at least 20 (one of each kind)")
    return Options(orgs=args.orgs, database_url=args.database_url, bare=args.bare, sample=args.sample,
                   rbi_processing=args.rbi_processing, detail=args.detail, keep=args.keep, log_level=args.log_level,
                   progress=args.progress)


def main(argv: Sequence[str] | None = None) -> None:
    from billing.logging import configure_logging
    from worker import install_runtime

    opts = parse(argv)
    configure_logging(opts.log_level)
    install_runtime()  # before anything creates the default runtime: core logs go to logging, not stdout
    asyncio.run(bench(opts))


if __name__ == "__main__":
    # Run from the importable module, not __main__: the workflow sandbox refuses workflows defined in __main__.
    from bench.month_end import main as run

    run()
