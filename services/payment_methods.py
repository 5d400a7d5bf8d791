"""The payment method as the customer sees it (SPEC A4-A6, E1, F1): masked (brand, last 4, expiry, issuing country,
the India mandate), never the gateway's token and never a card number, which stops at the gateway."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from billing.cards import PaymentMethodIn
from billing.money import round_money
from contracts.organization import PaymentMethodUpdated
from services.client import BillingClient
from store.db import Database
from store.queries import active_payment_method
from store.tables import Mandate, PaymentMethod


class MandateView(BaseModel):
    """E1-E5: the RBI e-mandate registered for an India-issued card."""

    status: str  # ACTIVE | REVOKED | REPLACED
    limit: Decimal
    currency: str
    registered_at: datetime
    revoked_at: datetime | None


class MaskedMethod(BaseModel):
    kind: Literal["card", "paypal"]
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    issuing_country: str | None = None
    paypal_email: str | None = None
    mandate: MandateView | None = None  # India-issued cards only (E1)
    added_at: datetime


class PaymentMethodOnFile(BaseModel):
    method: MaskedMethod | None  # None: no payment method on file yet


class PaymentMethodChange(BaseModel):
    """A method to put on file: a card (A5, validated here, tokenized by the gateway) or a PayPal account. With
    `authenticate`, the card is authenticated (SCA, F1) and every failed payment is charged again (F2)."""

    model_config = ConfigDict(extra="forbid")

    method: PaymentMethodIn
    authenticate: bool = Field(default=False, description="SCA: authenticate the card now (F1)")


class PaymentMethodReplaced(BaseModel):
    method: MaskedMethod
    authenticated: bool
    retried: list[str]  # F2: invoices whose failed payment was charged again
    collected: int  # of those, how many are now paid
    still_failed: list[str]


class Reauthenticated(BaseModel):
    authenticated: bool
    retried: list[str]
    collected: int
    still_failed: list[str]


def _masked(s, method: PaymentMethod) -> MaskedMethod:
    mandate = s.exec(select(Mandate).where(Mandate.payment_method_id == method.id)
                     .order_by(Mandate.registered_at.desc(), Mandate.id.desc())).first()
    return MaskedMethod(kind=method.kind, brand=method.brand, last4=method.last4, exp_month=method.exp_month,
                        exp_year=method.exp_year, issuing_country=method.issuing_country,
                        paypal_email=method.paypal_email, added_at=method.created_at,
                        mandate=None if mandate is None else MandateView(
                            status=mandate.status, limit=round_money(mandate.limit, mandate.currency),
                            currency=mandate.currency, registered_at=mandate.registered_at,
                            revoked_at=mandate.revoked_at))


def on_file(db: Database, org_id: str) -> PaymentMethodOnFile:
    with db.session() as s:
        method = active_payment_method(s, org_id)
        return PaymentMethodOnFile(method=None if method is None else _masked(s, method))


async def replace(billing: BillingClient, org_id: str, change: PaymentMethodChange,
                  requested_by: str) -> PaymentMethodReplaced:
    """A4-A6, F1-F2, E1: through BillingClient, which tokenizes at the gateway and updates the organization's
    workflow with the token only; an India-issued card registers its mandate before this returns."""
    result: PaymentMethodUpdated = await billing.update_payment_method(org_id, change.method,
                                                                        authenticate=change.authenticate,
                                                                        requested_by=requested_by)
    current = await asyncio.to_thread(on_file, billing.db, org_id)
    return PaymentMethodReplaced(method=current.method, **result.model_dump())


async def reauthenticate(billing: BillingClient, org_id: str, requested_by: str) -> Reauthenticated:
    result = await billing.reauthenticate_payment_method(org_id, requested_by=requested_by)
    return Reauthenticated(**result.model_dump())
