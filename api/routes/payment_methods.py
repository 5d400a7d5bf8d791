"""The payment method (SPEC A4-A6, E1, F1-F2): read masked, replace (a card is tokenized at the edge: its number
reaches no workflow, log or response), re-authenticate the card on file (SCA)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import Caller, OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from services import payment_methods
from services.payment_methods import PaymentMethodChange, PaymentMethodOnFile, PaymentMethodReplaced, Reauthenticated

router = APIRouter(tags=["payment method"])
Ctx = Annotated[ApiContext, Depends(context)]


@router.get("/payment-method", response_model=PaymentMethodOnFile, operation_id="getPaymentMethod",
            dependencies=[needs(Access.READ_BILLING)])
async def get_payment_method(org: OrgId, ctx: Ctx) -> PaymentMethodOnFile:
    """The method on file, masked: brand, last 4, expiry, issuing country, and an India card's mandate (E1)."""
    return await asyncio.to_thread(payment_methods.on_file, ctx.db, org)


@router.post("/payment-method", response_model=PaymentMethodReplaced, operation_id="replacePaymentMethod",
             dependencies=[needs(Access.CHANGE_BILLING)])
async def replace_payment_method(change: PaymentMethodChange, org: OrgId, caller: Caller,
                                 ctx: Ctx) -> PaymentMethodReplaced:
    """A5: a card (verified with 1.00 USD, refunded at once) or a PayPal account replaces the method on file for
    every project (A4). An India-issued card registers its RBI mandate first (E1: up to ~2 minutes). With
    `authenticate`, the card is authenticated (F1) and every failed payment charged again (F2)."""
    return await payment_methods.replace(ctx.billing, org, change, requested_by=caller.name)


@router.post("/payment-method/reauthenticate", response_model=Reauthenticated,
             operation_id="reauthenticatePaymentMethod", dependencies=[needs(Access.CHANGE_BILLING)])
async def reauthenticate(org: OrgId, caller: Caller, ctx: Ctx) -> Reauthenticated:
    """F1-F2: the customer re-authenticated the card on file (SCA); every failed payment is charged again, and the
    answer says how many were collected."""
    return await payment_methods.reauthenticate(ctx.billing, org, requested_by=caller.name)
