"""Exactly once when two workers do the same work at the same moment (SPEC M3, H1): two settlements of one
organization's month, two charges of one invoice attempt, two issues of one Flex Consulting invoice, each pair run
at once by two workers (two engines on one database, as two processes have). Each pair is held until both have
read that no row exists yet, so both insert: the unique business key or idempotency key refuses the second row,
and the loser's duplicate-key fallback answers with the winner's row. One invoice, one charge, one payment.

PostgreSQL only: SQLite lets one writer in at a time, so a second writer fails with "database is locked" and is
retried (by Temporal) instead of ever reaching a duplicate key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import func, select
from temporalio.testing import ActivityEnvironment

from activities.consulting import ConsultingActivities
from activities.invoices import InvoiceActivities, SettleInvoiceRequest
from activities.payments import PaymentActivities
from contracts.consulting import ConsultingInvoiceRequest
from contracts.payments import ChargeRequest
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import Invoice, InvoiceLine, Payment, PaymentEvent, SandboxCharge
from tests.activities.test_invalid_tax_id import AT, _german_org
from tests.factories import card, closed_invoice, org_with_method

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class Race:
    """Two workers' engines on one database. Each worker's first INSERT into each of `tables` waits at a barrier
    until the other's has come too (both have looked for the row and found none); unique violations are recorded."""

    def __init__(self, url: str, *tables: str) -> None:
        self.workers = [Database(url), Database(url)]
        self.barriers = {f"INSERT INTO {table} ": threading.Barrier(2, timeout=30) for table in tables}
        self.held: set[tuple[str, int]] = set()
        self.duplicates: list[tuple[int, str]] = []  # (worker, table the violation was on)
        for number, database in enumerate(self.workers):
            event.listen(database.engine, "before_cursor_execute", self._hold)
            event.listen(database.engine, "handle_error", self._recorder(number))

    def _hold(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        for insert, barrier in self.barriers.items():
            if statement.startswith(insert) and (insert, threading.get_ident()) not in self.held:
                self.held.add((insert, threading.get_ident()))
                barrier.wait()

    def _recorder(self, number: int):
        def record(context) -> None:  # noqa: ANN001
            if isinstance(context.original_exception, psycopg.errors.UniqueViolation):
                self.duplicates.append((number, context.statement.split()[2]))
        return record

    def run(self, activity_of, request):
        """Run one activity invocation per worker at once; their results in worker order. A worker that fails
        breaks the barriers, so the other does not wait out their timeout, and its error is the one raised."""
        def invoke(database):
            try:
                return ActivityEnvironment().run(activity_of(database), request)
            except BaseException:
                for barrier in self.barriers.values():
                    barrier.abort()
                raise

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(invoke, database) for database in self.workers]
            errors = [future.exception(timeout=60) for future in futures]
        failed = [error for error in errors if error is not None]
        if failed:  # the worker that failed first, not the one it left at a broken barrier
            raise next((e for e in failed if not isinstance(e, threading.BrokenBarrierError)), failed[0])
        return [future.result() for future in futures]

    def close(self) -> None:
        for database in self.workers:
            database.dispose()


@pytest.fixture
def race_on(db):
    races: list[Race] = []

    def start(*tables: str) -> Race:
        races.append(Race(db.url, *tables))
        return races[-1]

    yield start
    for race in races:
        race.close()


def test_two_workers_settling_one_month_make_one_invoice(db, race_on):
    _german_org(db, "berlin", None)  # an organization with no PENDING invoice: settlement inserts the cloud invoice
    race = race_on("invoices")
    results = race.run(lambda database: InvoiceActivities(database).settle_cloud_invoice,
                       SettleInvoiceRequest(org_id="berlin", period="2027-01", at=AT))
    assert [loser for loser, table in race.duplicates] != [] and {t for _, t in race.duplicates} == {"invoices"}
    assert len(race.duplicates) == 1  # one worker lost on the business key and took the fallback
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].number == results[1].number and results[0].total == results[1].total == Decimal("119.00")
    with db.session() as s:
        invoices = s.exec(select(Invoice).where(Invoice.period == "2027-01")).all()
        assert [(i.number, i.status, i.total) for i in invoices] == [(results[0].number, "CLOSED", Decimal("119"))]
        assert s.exec(select(func.count()).select_from(InvoiceLine)).one() == 1  # the loser wrote nothing


def test_two_workers_charging_one_attempt_make_one_charge_and_one_payment(db, race_on):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card())
    invoice = closed_invoice(db)
    race = race_on("payments", "sandbox_charges")  # the payment row's race, then the gateway's own
    request = ChargeRequest(org_id="acme", invoice_id=invoice.id, invoice_number=invoice.number, attempt=1,
                            idempotency_key=f"{invoice.number}:1", amount=Decimal("59.52"), currency="USD", at=AT)
    results = race.run(lambda database: PaymentActivities(database, SandboxGateway(database)).charge_payment, request)
    # Both duplicate-key fallbacks were taken: the payment row's (activities) and the gateway's charge row's (store).
    assert sorted(table for _, table in race.duplicates) == ["payments", "sandbox_charges"]
    assert [r.status for r in results] == ["PAID", "PAID"] and results[0].payment_id == results[1].payment_id
    with db.session() as s:
        # Besides the card's verification when it was tokenized (A5), one charge.
        [charge] = [c for c in s.exec(select(SandboxCharge)) if not c.idempotency_key.startswith("verify")]
        assert (charge.idempotency_key, charge.outcome, charge.amount) == (request.idempotency_key, "succeeded",
                                                                            Decimal("59.52"))
        [payment] = s.exec(select(Payment)).all()
        assert (payment.status, payment.gateway_charge_id, payment.amount) == ("PAID", charge.id, Decimal("59.52"))
        paid = s.get(Invoice, invoice.id)
        assert (paid.status, paid.amount_due) == ("PAID", Decimal("0"))
        assert [e.status for e in s.exec(select(PaymentEvent).order_by(PaymentEvent.id))] == ["NEW", "PAID"]


def test_two_workers_issuing_one_purchase_make_one_consulting_invoice(db, race_on):
    _german_org(db, "berlin", None)
    race = race_on("invoices")
    request = ConsultingInvoiceRequest(org_id="berlin", purchase_id="p-1", level="advisory", amount=Decimal("500"),
                                       tax_lines=[], at=AT)
    results = race.run(lambda database: ConsultingActivities(database).issue_invoice, request)
    assert [table for _, table in race.duplicates] == ["invoices"]
    assert sorted(r.created for r in results) == [False, True] and results[0].number == results[1].number
    with db.session() as s:
        [invoice] = s.exec(select(Invoice).where(Invoice.kind == "consulting")).all()
        assert (invoice.number, invoice.total) == (results[0].number, Decimal("500"))
        assert s.exec(select(func.count()).select_from(InvoiceLine)).one() == 1
