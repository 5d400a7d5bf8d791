"""Subscriptions and their activation codes as the customer reads them (SPEC D1, D2). A code is never shown: only
whether it was applied, how many were issued, and where the 30 days of use stand."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel
from sqlmodel import select

from billing.money import round_money
from billing.subscriptions import SubscriptionTerms, SubscriptionType
from services.client import BillingClient, SubscriptionIn
from store.db import Database
from store.tables import Activation, Subscription
from workflows.activation import ActivationState


class SubscriptionView(BaseModel):
    id: int
    type: SubscriptionType
    status: str  # ACTIVE | PENDING_ACTIVATION
    term_start: date
    term_end: date
    term_months: int
    commitment: Decimal
    currency: str
    created_at: datetime


class NewSubscription(SubscriptionIn):
    """D1-D2: a subscription sold by sales; `pending` e-mails an activation code to the billing contact."""

    activation_code: Literal["applied", "pending"] = "applied"


class SubscriptionAdded(BaseModel):
    subscription: SubscriptionView
    activation_workflow_id: str | None  # the activation's workflow when the code is pending (D2)


class ActivationView(BaseModel):
    subscription_id: int
    status: str  # PENDING | APPLIED
    codes_issued: int
    first_usage_on: date | None
    grace_ends_at: datetime | None  # D2: the card is charged for usage when this passes with no code applied
    grace_expired: bool
    applied_at: datetime | None


class ActivationApplied(BaseModel):
    status: str
    codes_issued: int
    first_usage_on: date | None
    grace_ends_at: datetime | None
    applied_at: datetime | None
    charged_invoices: list[str]  # charged to the card, non-refundable, because the grace period ended first (D2)


class CodeReissued(BaseModel):
    codes_issued: int  # the newest code is e-mailed; every earlier one stops working


def _view(row: Subscription) -> SubscriptionView:
    terms = SubscriptionTerms(type=row.type, term_start=row.term_start, term_months=row.term_months,
                              commitment=row.commitment, currency=row.currency)
    return SubscriptionView(id=row.id, type=SubscriptionType(row.type), status=row.status, term_start=row.term_start,
                            term_end=terms.term_end(), term_months=row.term_months,
                            commitment=round_money(row.commitment, row.currency),
                            currency=row.currency, created_at=row.created_at)


def subscriptions(db: Database, org_id: str) -> list[SubscriptionView]:
    with db.session() as s:
        rows = s.exec(select(Subscription).where(Subscription.org_id == org_id)
                      .order_by(Subscription.term_start, Subscription.id)).all()
    return [_view(row) for row in rows]


async def add(billing: BillingClient, org_id: str, new: NewSubscription) -> SubscriptionAdded:
    workflow_id = await billing.add_subscription(org_id, SubscriptionIn(**new.model_dump(exclude={"activation_code"})),
                                                 activation_code=new.activation_code)

    def newest() -> SubscriptionView:
        with billing.db.session() as s:
            # The row just added: the newest of these terms (add_subscription answers a workflow ID, not the row).
            row = s.exec(select(Subscription).where(Subscription.org_id == org_id, Subscription.type == new.type,
                                                    Subscription.term_start == new.term_start)
                         .order_by(Subscription.id.desc())).first()
        return _view(row)

    return SubscriptionAdded(subscription=await asyncio.to_thread(newest), activation_workflow_id=workflow_id)


def activations(db: Database, org_id: str) -> list[ActivationView]:
    with db.session() as s:
        rows = s.exec(select(Activation).where(Activation.org_id == org_id).order_by(Activation.id.desc())).all()
    return [ActivationView(subscription_id=row.subscription_id, status=row.status, codes_issued=row.issued,
                           first_usage_on=row.first_usage_on, grace_ends_at=row.grace_ends_at,
                           grace_expired=row.grace_expired, applied_at=row.applied_at) for row in rows]


def applied(state: ActivationState) -> ActivationApplied:
    return ActivationApplied.model_validate(state.model_dump())
