"""The pages under test: seeded invoices written straight to the database, the app in process (httpx), and
signing in the way a member does (the e-mailed one-time link)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.pages import PagesSettings
from billing.money import round_money
from services import signin
from services.client import BillingClient
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import Invoice, InvoiceLine, InvoiceTaxLine, Payment
from tests.factories import AT, org_with_method

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
NOW = datetime(2027, 2, 15, 12, 0, tzinfo=timezone.utc)
SERVICES = ("Atlas Dedicated", "Atlas Backup", "Atlas Data Transfer")
DEPLOYMENTS = ("Cluster0", "Cluster1")


def line_rows(count: int, period: str = "2027-01") -> list[dict]:
    """`count` usage lines over three services and two deployments; amounts rounded once per line (M1)."""
    start = date.fromisoformat(f"{period}-01")
    rows = []
    for i in range(count):
        quantity, price = Decimal(1 + i % 7) * Decimal("1.5"), Decimal("0.0") + Decimal(3 + i % 5) / 100
        rows.append(dict(project="storefront" if i % 3 else "analytics", deployment=DEPLOYMENTS[i % 2],
                         service=SERVICES[i % 3], sku=f"SKU_{i % 11}", start_date=start, end_date=start, unit="hours",
                         quantity=quantity, unit_price=price, amount=round_money(quantity * price, "USD")))
    return rows


def add_invoice(db: Database, org_id: str, period: str, status: str, lines: list[dict], *, kind: str = "cloud",
                tax_rate: Decimal = Decimal("0.23"), currency: str = "USD", cloud: Invoice | None = None,
                credits: Decimal = Decimal(0), created: datetime = AT, paid: bool = False,
                payments: list[dict] = ()) -> Invoice:
    usage = sum((row["amount"] for row in lines), Decimal(0)) if cloud is None else cloud.usage
    tax = round_money(usage * tax_rate, currency)
    total = usage + tax
    due = Decimal(0) if paid or status in ("PAID", "FREE") else total - credits
    with db.session() as s:
        invoice = Invoice(key=f"{org_id}:{period}:{kind}", org_id=org_id, kind=kind, period=period, status=status,
                          currency=currency, usage=usage, billed_usage=usage, tax=tax, total=total, amount_due=due,
                          created_at=created, credits_applied=credits, cloud_invoice_id=cloud.id if cloud else None,
                          fx_rate=Decimal("0.92") if currency == "EUR" else None)
        s.add(invoice)
        s.flush()
        invoice.number = f"INV-{period.replace('-', '')}-{invoice.id:06d}" + ("-T" if kind == "tax" else "")
        s.add(invoice)
        if tax:
            s.add(InvoiceTaxLine(invoice_id=invoice.id, position=0, name="VAT", rate=tax_rate, amount=tax))
        s.add_all(InvoiceLine(invoice_id=invoice.id, position=i, **row) for i, row in enumerate(lines))
        for n, payment in enumerate(payments, 1):
            s.add(Payment(idempotency_key=f"{invoice.number}:{n}", org_id=org_id, invoice_id=invoice.id, attempt=n,
                          currency=currency, created_at=created, updated_at=created, **payment))
    return invoice


class Seeded:
    def __init__(self, db: Database) -> None:
        self.db = db
        gateway = SandboxGateway(db)
        org_with_method(db, gateway, org_id="acme", created=datetime(2026, 10, 1, tzinfo=timezone.utc))
        org_with_method(db, gateway, org_id="globex", created=datetime(2026, 10, 1, tzinfo=timezone.utc))
        oct_, nov = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)
        self.free = add_invoice(db, "acme", "2026-10", "FREE", [], tax_rate=Decimal(0), created=oct_)
        self.paid = add_invoice(db, "acme", "2026-11", "PAID", line_rows(5, "2026-11"), created=nov, paid=True)
        self.cloud = add_invoice(db, "acme", "2027-01", "FAILED", line_rows(250), created=AT, payments=[
            dict(method="card", status="FAILED", amount=Decimal("1"), failure_code="card_declined")])
        self.tax = add_invoice(db, "acme", "2027-01", "FAILED", [], kind="tax", currency="EUR", cloud=self.cloud,
                               created=AT)
        self.pending = add_invoice(db, "acme", "2027-02", "PENDING", line_rows(3, "2027-02"), tax_rate=Decimal(0),
                                   created=AT)
        self.other = add_invoice(db, "globex", "2027-01", "CLOSED", line_rows(2), created=AT)


@pytest.fixture
def seeded(db: Database) -> Seeded:
    return Seeded(db)


async def fixed_clock() -> datetime:
    return NOW


def pages_app(db: Database, smtp=None, billing: BillingClient | None = None):
    billing = billing or BillingClient(None, db, SandboxGateway(db), clock=fixed_clock)  # type: ignore[arg-type]
    settings = PagesSettings(secret=b"test-secret-of-32-bytes-at-least!", **({"smtp": smtp} if smtp else {}))
    return create_app(billing, pages_settings=settings)


@pytest_asyncio.fixture
async def browser_client(seeded: Seeded, smtp) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client (keeps cookies, follows nothing by itself) on the app without Temporal."""
    app = pages_app(seeded.db, smtp)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://pages.test") as client:
        yield client


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, db: Database, org: str = "acme", email: str = "owner@acme.test") -> None:
    """Sign in with a one-time link issued for the member (the e-mail path has its own test)."""
    token = signin.issue_link_token(db, org, email, datetime.now(timezone.utc))
    assert token is not None
    page = await client.get(f"/orgs/{org}/signin/{token}")
    response = await client.post(f"/orgs/{org}/signin/{token}", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == f"/orgs/{org}/invoices"
