"""Buying Flex Consulting step by step (SPEC B3): each step is an update of the checkout's workflow, whose
validators refuse a step out of order; the card number of a new method stops at the gateway (A6), so the workflow
and every answer see its token's masked details only. BillingClient.buy_flex_consulting runs the same steps in one
call for the CLI and the simulator."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from billing.cards import PaymentMethodIn, TokenizedMethod
from billing.profiles import BillingProfileIn
from billing.tax import TaxLine
from contracts.flows import ORG_ID, checkout_workflow_id
from services.client import BillingClient, BillingError
from services.invoices import NotFound
from workflows.checkout import BillingAddress, CheckoutInput, CheckoutState, CheckoutWorkflow

# A purchase ID has no '-': checkout-<org>-<purchase> then names exactly one organization's checkout (I2).
PURCHASE_ID = re.compile(r"^[a-z0-9]{1,40}$")


class CheckoutIn(BaseModel):
    """B3's first step: the engagement level and its price in USD (the backend's catalogue sets it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    level: str = Field(min_length=1, max_length=100)
    price: Decimal = Field(gt=0, max_digits=14, decimal_places=2)

    @field_validator("price", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("give amounts as strings (e.g. \"5000.00\"): money is never a float")
        return value


class AddressStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: BillingProfileIn | None = Field(default=None, description="A1-A2; none: the billing profile on file")


class MethodStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: PaymentMethodIn | None = Field(default=None, description="A5; none: the payment method on file (A4)")


class MaskedCheckoutMethod(BaseModel):
    kind: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    issuing_country: str | None
    paypal_email: str | None


class CartView(BaseModel):
    level: str
    price: Decimal
    tax_lines: list[TaxLine]  # B3/C3: the Flex Consulting column of the region table
    tax: Decimal
    total: Decimal


class CheckoutView(BaseModel):
    id: str
    step: str  # ADDRESS | PAYMENT_METHOD | REVIEW | CONFIRMED | PAID | ABANDONED
    level: str | None
    price: Decimal | None
    address: BillingAddress | None
    method: MaskedCheckoutMethod | None
    cart: CartView | None
    invoice: str | None  # the consulting invoice, once confirmed
    payment_status: str | None


def _view(purchase_id: str, state: CheckoutState) -> CheckoutView:
    method = None if state.method is None else MaskedCheckoutMethod(**state.method.model_dump(exclude={"token"}))
    cart = None if state.cart is None else CartView(**state.cart.model_dump())
    return CheckoutView(id=purchase_id, step=state.step, level=state.level, price=state.price, address=state.address,
                        method=method, cart=cart, invoice=state.invoice, payment_status=state.payment_status)


def _handle(billing: BillingClient, org_id: str, purchase_id: str) -> WorkflowHandle:
    if not PURCHASE_ID.match(purchase_id):
        raise NotFound(f"no checkout {purchase_id!r}")
    return billing.temporal.get_workflow_handle_for(CheckoutWorkflow.run, checkout_workflow_id(org_id, purchase_id))


async def _update(billing: BillingClient, org_id: str, purchase_id: str, update, *args) -> CheckoutView:
    handle = _handle(billing, org_id, purchase_id)
    try:
        await handle.execute_update(update, args=list(args))
    except WorkflowUpdateFailedError as err:
        raise BillingError(str(err.cause.message if err.cause else err)) from None
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # No running checkout: a finished one (paid or abandoned) still answers its state and takes no more steps;
        # one that never existed is NotFound from here.
        state = await checkout(billing, org_id, purchase_id)
        raise BillingError(f"the checkout is {state.step.lower()}: start a new one") from None
    return await checkout(billing, org_id, purchase_id)


async def checkout(billing: BillingClient, org_id: str, purchase_id: str) -> CheckoutView:
    try:
        state = await _handle(billing, org_id, purchase_id).query(CheckoutWorkflow.state)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no checkout {purchase_id!r}") from None
        raise
    return _view(purchase_id, state)


async def start(billing: BillingClient, org_id: str, order: CheckoutIn) -> CheckoutView:
    """B3: open a checkout (its workflow, abandoned if not confirmed in time: H4) with the engagement level chosen."""
    purchase_id = uuid.uuid4().hex[:12]
    await billing.temporal.start_workflow(
        CheckoutWorkflow.run, CheckoutInput(org_id=org_id, purchase_id=purchase_id,
                                            abandon_after=billing.durations.checkout_abandon),
        id=checkout_workflow_id(org_id, purchase_id), task_queue=billing.task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)]),
        static_summary=f"Flex Consulting checkout of {org_id}: {order.level}")
    return await _update(billing, org_id, purchase_id, CheckoutWorkflow.choose_level, order.level, order.price)


async def choose_level(billing: BillingClient, org_id: str, purchase_id: str, order: CheckoutIn) -> CheckoutView:
    return await _update(billing, org_id, purchase_id, CheckoutWorkflow.choose_level, order.level, order.price)


async def set_address(billing: BillingClient, org_id: str, purchase_id: str, step: AddressStep) -> CheckoutView:
    """B3/A1-A3: the billing address the cart is taxed by: the one given (validated), or the profile on file."""
    address = step.address or (await billing.billing_profile_and_method(org_id))[0]
    return await _update(billing, org_id, purchase_id, CheckoutWorkflow.set_billing_address,
                         BillingAddress(country=address.country, state=address.state, tax_id=address.tax_id))


async def set_payment_method(billing: BillingClient, org_id: str, purchase_id: str, step: MethodStep) -> CheckoutView:
    """B3/A5: the method to charge: a new card or PayPal account (tokenized here, A6), or the one on file (A4)."""
    await checkout(billing, org_id, purchase_id)  # an unknown checkout is refused before anything reaches the gateway
    method: TokenizedMethod | None
    if step.method is not None:
        method = await billing.tokenize(step.method)
    else:
        method = (await billing.billing_profile_and_method(org_id))[1]
        if method is None:
            raise BillingError(f"organization {org_id!r} has no payment method on file: give one", field="method")
    return await _update(billing, org_id, purchase_id, CheckoutWorkflow.set_payment_method, method,
                         step.method is not None)


async def review(billing: BillingClient, org_id: str, purchase_id: str) -> CheckoutView:
    return await _update(billing, org_id, purchase_id, CheckoutWorkflow.review)


async def confirm(billing: BillingClient, org_id: str, purchase_id: str) -> CheckoutView:
    """B3: confirm and purchase: the workflow issues the consulting invoice and pays it through its payment workflow,
    then e-mails the confirmation."""
    return await _update(billing, org_id, purchase_id, CheckoutWorkflow.confirm)
