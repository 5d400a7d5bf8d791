"""The schema story: Alembic migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select

from store import migrate
from store.db import Database
from store.tables import Invoice, Organization, Payment

AT = datetime(2027, 1, 31, 23, 59, 59, 123000, tzinfo=timezone.utc)


def test_migrations_build_exactly_the_declared_schema(database_url):
    migrate.upgrade(database_url)
    database = Database(database_url)
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []
    assert "payments" in inspect(database.engine).get_table_names()
    database.dispose()


def test_migrations_downgrade_to_nothing_and_back(database_url):
    migrate.upgrade(database_url)
    migrate.downgrade(database_url, "base")
    database = Database(database_url)
    assert "payments" not in inspect(database.engine).get_table_names()
    database.dispose()
    migrate.upgrade(database_url)


def _invoice(org: str = "acme", total: str = "0.30") -> Invoice:
    amount = Decimal(total)
    return Invoice(key=f"{org}:2027-01:cloud", number=f"INV-{org}", org_id=org, kind="cloud", period="2027-01",
                   status="CLOSED", currency="USD", usage=amount, billed_usage=amount, tax=Decimal(0), total=amount,
                   amount_due=amount, created_at=AT)


def test_money_columns_are_exact_and_timestamps_utc(db):
    with db.session() as s:
        s.add(Organization(id="acme", name="Acme", created_at=AT))
        s.flush()
        s.add(_invoice(total=str(Decimal("0.1") + Decimal("0.2"))))
    with db.session() as s:
        invoice = s.exec(select(Invoice)).one()
    assert invoice.total == Decimal("0.3") and isinstance(invoice.total, Decimal)
    assert invoice.created_at == AT and invoice.created_at.utcoffset() == timedelta(0)


def test_money_columns_refuse_float(db):
    with pytest.raises(Exception, match="never float"):
        with db.session() as s:
            s.add(Organization(id="acme", name="Acme", created_at=AT))
            s.flush()
            invoice = _invoice()
            invoice.total = 0.3
            s.add(invoice)


def test_database_refuses_a_second_payment_with_the_same_idempotency_key(db):
    with db.session() as s:
        s.add(Organization(id="acme", name="Acme", created_at=AT))
        s.flush()
        invoice = _invoice()
        s.add(invoice)
        s.flush()
        invoice_id = invoice.id

    def payment(attempt: int) -> Payment:
        return Payment(idempotency_key="INV-acme:1", org_id="acme", invoice_id=invoice_id, attempt=attempt,
                       method="card", status="NEW", amount=Decimal("0.30"), currency="USD", created_at=AT,
                       updated_at=AT)

    with db.session() as s:
        s.add(payment(1))
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(payment(2))
    with db.session() as s:
        assert len(s.exec(select(Payment)).all()) == 1
