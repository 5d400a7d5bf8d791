"""A credit draw as stored (store/credits.py): the lines' use, and one PAID `credits` payment per draw, numbered
0, -1, ... on the invoice, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlmodel import select

from billing.credits import draw_credits
from store.credits import credit_lines, line_states, store_draw
from store.tables import CreditLine, Invoice, Organization, Payment, PaymentEvent

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)


def _org_with_credits(db) -> int:
    with db.session() as s:
        s.add(Organization(id="acme", name="Acme", created_at=AT))
        s.flush()
        for position, (kind, amount) in enumerate([("promotional", "10.00"), ("prepaid", "100.00")]):
            s.add(CreditLine(org_id="acme", position=position, kind=kind, amount=Decimal(amount),
                             start_date=date(2027, 1, 1), end_date=date(2027, 12, 31)))
        invoice = Invoice(key="acme:2027-01:cloud", number="INV-202701-000001", org_id="acme", kind="cloud",
                          period="2027-01", status="CLOSED", currency="USD", usage=Decimal("60.00"),
                          billed_usage=Decimal("60.00"), tax=Decimal("0.00"), total=Decimal("60.00"),
                          amount_due=Decimal("60.00"), created_at=AT)
        s.add(invoice)
        s.flush()
        return invoice.id


def _draw(db, invoice_id: int, amount: str, key: str = "credits") -> None:
    with db.engine.begin() as conn:
        rows = credit_lines(conn, "acme")
        drawdown = draw_credits(line_states(rows), Decimal(amount), date(2027, 1, 31))
        store_draw(conn, rows, drawdown, org_id="acme", invoice_id=invoice_id, invoice_number="INV-202701-000001",
                   currency="USD", at=AT, key=key)


def test_each_draw_is_one_paid_credits_payment_numbered_down_from_zero(db):
    invoice_id = _org_with_credits(db)
    _draw(db, invoice_id, "25.00")
    _draw(db, invoice_id, "5.00", key="credits:activation")
    with db.session() as s:
        lines = s.exec(select(CreditLine).order_by(CreditLine.position)).all()
        payments = s.exec(select(Payment).order_by(Payment.attempt.desc())).all()
        events = s.exec(select(PaymentEvent).order_by(PaymentEvent.id)).all()
    assert [line.used for line in lines] == [Decimal("10.00"), Decimal("20.00")]  # top to bottom (D3)
    assert [(p.idempotency_key, p.attempt, p.method, p.status, p.amount, p.currency, p.refundable)
            for p in payments] == [
        ("INV-202701-000001:credits", 0, "credits", "PAID", Decimal("25.00"), "USD", True),
        ("INV-202701-000001:credits:activation", -1, "credits", "PAID", Decimal("5.00"), "USD", True)]
    assert all(isinstance(p.amount, Decimal) for p in payments)
    assert [[part.split(": ")[0] for part in e.detail.split(", ")] for e in events] == [
        ["promotional #0", "prepaid #1"], ["prepaid #1"]]  # each event names the lines its draw used


def test_a_draw_that_covers_nothing_records_no_payment(db):
    invoice_id = _org_with_credits(db)
    _draw(db, invoice_id, "0.00")
    with db.session() as s:
        assert s.exec(select(Payment)).all() == []
        assert [line.used for line in s.exec(select(CreditLine))] == [Decimal("0.00"), Decimal("0.00")]
