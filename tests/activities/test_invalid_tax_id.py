"""SPEC A2, C1 behind the edge: a billing profile whose stored tax ID the registry refuses (written before a rule
tightened, or straight to the database) is taxed at month-end like a profile with no ID; a valid one is
reverse-charged. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.invoices import InvoiceActivities, SettleInvoiceRequest
from store.tables import BillingProfile, Invoice, InvoiceTaxLine, Organization, UsageLine
from tests.billing.test_invalid_tax_id import INVALID_IDS
from tests.billing.test_tax import VALID_IDS

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)


def _german_org(db, org_id: str, tax_id: str) -> None:
    with db.session() as s:
        s.add(Organization(id=org_id, name=org_id, created_at=AT))
        s.flush()
        s.add(BillingProfile(org_id=org_id, country="DE", state="Berlin", city="Berlin", address_line1="1 Unter den Linden",
                             postal_code="10117", tax_id=tax_id, updated_at=AT))
        s.add(UsageLine(org_id=org_id, period="2027-01", project="web", service="Atlas Dedicated", sku="M10",
                        start_date=date(2027, 1, 1), end_date=date(2027, 2, 1), quantity=Decimal("1000"),
                        unit_price=Decimal("0.10")))


@pytest.mark.parametrize("tax_id, tax, lines", [
    (VALID_IDS["DE"], "0.00", []),                              # C1: reverse charge
    (INVALID_IDS["DE"], "19.00", [("VAT", Decimal("0.19"))]),    # the registry refuses it: German VAT
])
def test_month_end_reverse_charges_only_a_tax_id_the_registry_accepts(db, tax_id, tax, lines):
    _german_org(db, "berlin", tax_id)
    summary = ActivityEnvironment().run(InvoiceActivities(db).settle_cloud_invoice,
                                        SettleInvoiceRequest(org_id="berlin", period="2027-01", at=AT))
    assert (summary.billed_usage, summary.tax, summary.total) == (Decimal("100.00"), Decimal(tax),
                                                                   Decimal("100.00") + Decimal(tax))
    with db.session() as s:
        invoice = s.exec(select(Invoice).where(Invoice.number == summary.number)).one()
        stored = s.exec(select(InvoiceTaxLine).where(InvoiceTaxLine.invoice_id == invoice.id)).all()
    assert [(line.name, line.rate) for line in stored] == lines
