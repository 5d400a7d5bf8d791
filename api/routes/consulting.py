"""Buying Flex Consulting (SPEC B3), one request per step of the checkout's workflow: choose a level -> billing
address -> payment method -> review the cart -> confirm and purchase."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.auth import OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from services import consulting
from services.consulting import AddressStep, CheckoutIn, CheckoutView, MethodStep

router = APIRouter(tags=["flex consulting"])
Ctx = Annotated[ApiContext, Depends(context)]
CheckoutId = Annotated[str, Path(max_length=40, description="the checkout's `id`")]
CHANGE = [needs(Access.CHANGE_BILLING)]


@router.post("/consulting/checkouts", response_model=CheckoutView, status_code=201, operation_id="startCheckout",
             dependencies=CHANGE)
async def start_checkout(order: CheckoutIn, org: OrgId, ctx: Ctx) -> CheckoutView:
    """B3: open a checkout with an engagement level; abandoned, nothing charged, unless confirmed in time."""
    return await consulting.start(ctx.billing, org, order)


@router.get("/consulting/checkouts/{checkout_id}", response_model=CheckoutView, operation_id="getCheckout",
            dependencies=[needs(Access.READ_BILLING)])
async def get_checkout(checkout_id: CheckoutId, org: OrgId, ctx: Ctx) -> CheckoutView:
    """Where the checkout stands: its step, the cart, and once confirmed the invoice and its payment."""
    return await consulting.checkout(ctx.billing, org, checkout_id)


@router.post("/consulting/checkouts/{checkout_id}/level", response_model=CheckoutView,
             operation_id="chooseCheckoutLevel", dependencies=CHANGE)
async def choose_level(order: CheckoutIn, checkout_id: CheckoutId, org: OrgId, ctx: Ctx) -> CheckoutView:
    return await consulting.choose_level(ctx.billing, org, checkout_id, order)


@router.post("/consulting/checkouts/{checkout_id}/address", response_model=CheckoutView,
             operation_id="setCheckoutAddress", dependencies=CHANGE)
async def set_address(step: AddressStep, checkout_id: CheckoutId, org: OrgId, ctx: Ctx) -> CheckoutView:
    """A1-A3: the billing address (validated), or none for the billing profile on file."""
    return await consulting.set_address(ctx.billing, org, checkout_id, step)


@router.post("/consulting/checkouts/{checkout_id}/payment-method", response_model=CheckoutView,
             operation_id="setCheckoutPaymentMethod", dependencies=CHANGE)
async def set_payment_method(step: MethodStep, checkout_id: CheckoutId, org: OrgId, ctx: Ctx) -> CheckoutView:
    """A5: a card or PayPal account (tokenized here: the workflow sees its token), or none for the one on file."""
    return await consulting.set_payment_method(ctx.billing, org, checkout_id, step)


@router.post("/consulting/checkouts/{checkout_id}/review", response_model=CheckoutView,
             operation_id="reviewCheckout", dependencies=CHANGE)
async def review(checkout_id: CheckoutId, org: OrgId, ctx: Ctx) -> CheckoutView:
    """The cart: price, Flex Consulting tax of the address (C3), total."""
    return await consulting.review(ctx.billing, org, checkout_id)


@router.post("/consulting/checkouts/{checkout_id}/confirm", response_model=CheckoutView,
             operation_id="confirmCheckout", dependencies=CHANGE)
async def confirm(checkout_id: CheckoutId, org: OrgId, ctx: Ctx) -> CheckoutView:
    """Confirm and purchase: the consulting invoice is issued and paid through its payment workflow; a confirmation
    e-mail follows the payment."""
    return await consulting.confirm(ctx.billing, org, checkout_id)
