"""Queries more than one place asks, each once."""

from __future__ import annotations

from sqlmodel import Session, select

from store.tables import PaymentMethod


def active_payment_methods(s: Session, org_id: str) -> list[PaymentMethod]:
    """The organization's payment methods still on file, newest first (A4: one per organization once replaced)."""
    return list(s.exec(select(PaymentMethod).where(PaymentMethod.org_id == org_id,
                                                   PaymentMethod.active == True)  # noqa: E712
                       .order_by(PaymentMethod.id.desc())))


def active_payment_method(s: Session, org_id: str) -> PaymentMethod | None:
    """The payment method on file: what a charge, a mandate or PAY NOW uses (A4, A5)."""
    methods = active_payment_methods(s, org_id)
    return methods[0] if methods else None
