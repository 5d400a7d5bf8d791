"""Business metrics (SPEC J2) from the database: what operators alert on."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry

from services.metrics import BusinessCollector
from store.gateway import SandboxGateway
from store.tables import Invoice, Payment
from tests.factories import AT, closed_invoice, org_with_method


def scrape(db, now: datetime) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusinessCollector(db, now=lambda: now))
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def pay(db, invoice: Invoice, status: str, method: str = "card", amount: str = "59.52", attempt: int = 1) -> None:
    with db.session() as s:
        s.add(Payment(idempotency_key=f"{invoice.number}:{attempt}", org_id=invoice.org_id, invoice_id=invoice.id,
                      attempt=attempt, method=method, status=status, amount=Decimal(amount), currency="USD",
                      created_at=AT, updated_at=AT))


def test_payments_amounts_and_waiting(db):
    org_with_method(db, SandboxGateway(db), org_id="acme", created=datetime(2026, 12, 1, tzinfo=timezone.utc))
    paid = closed_invoice(db, "acme", "59.52", "2027-01")
    failed = closed_invoice(db, "acme", "10.00", "2026-12")
    pay(db, paid, "PAID")
    pay(db, failed, "FAILED", amount="10.00")
    with db.session() as s:
        row = s.get(Invoice, failed.id)
        row.status = "FAILED"
        s.add(row)
    samples = scrape(db, datetime(2027, 2, 1, 5, 0, tzinfo=timezone.utc))
    assert samples['billing_payments{method="card",status="PAID"}'] == 1
    assert samples['billing_payments{method="card",status="FAILED"}'] == 1
    assert samples['billing_amount_charged_total{currency="USD"}'] == 59.52
    assert samples["billing_payments_waiting_for_retry"] == 1
    assert samples["billing_webhooks_pending"] == 0


def test_settlement_lag_runs_until_every_organization_is_settled(db):
    gateway = SandboxGateway(db)
    for org in ("acme", "globex"):
        org_with_method(db, gateway, org_id=org, created=datetime(2026, 12, 1, tzinfo=timezone.utc))
    closed_invoice(db, "acme", "1.00", "2027-01")  # created at AT = 2027-02-01 00:00
    at_five = datetime(2027, 2, 1, 5, 0, tzinfo=timezone.utc)
    open_month = scrape(db, at_five)
    assert open_month['billing_settlements_completed{period="2027-01"}'] == 1
    assert open_month['billing_settlements_due{period="2027-01"}'] == 2
    assert open_month['billing_settlement_lag_seconds{finished="false",period="2027-01"}'] == 5 * 3600
    closed_invoice(db, "globex", "1.00", "2027-01")
    finished = scrape(db, at_five)
    assert finished['billing_settlement_lag_seconds{finished="true",period="2027-01"}'] == 0  # both at 00:00
