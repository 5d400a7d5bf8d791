"""Buying Flex Consulting (SPEC B3): engagement level -> billing address -> payment method -> review cart ->
confirm and purchase -> a consulting invoice paid through the payment workflow -> confirmation e-mail.

Each step is an update whose validator refuses what cannot be used; a cart not confirmed in time is
abandoned with nothing charged (SPEC H4: the time is configuration).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.options import ACTIVITY, EMAIL
    from contracts import clock
    from contracts.consulting import CartRequest, ConsultingActivities, ConsultingInvoiceRequest
    from contracts.email import EmailActivities, EmailRequest
    from contracts.starting import StartingActivities
    from billing.cards import TokenizedMethod
    from billing.tax import TaxLine
    from contracts.payments import ChargeInvoiceInput, PaymentNotice



class CheckoutInput(BaseModel):
    org_id: str
    purchase_id: str
    abandon_after: timedelta = timedelta(hours=24)


class BillingAddress(BaseModel):
    """Validated at the edge (billing.profiles.BillingProfileIn); what the cart's tax needs."""

    country: str
    state: str
    tax_id: str | None = None


class Cart(BaseModel):
    level: str
    price: Decimal
    tax_lines: list[TaxLine]
    tax: Decimal
    total: Decimal


class CheckoutState(BaseModel):
    step: str = "CHOOSE_LEVEL"  # CHOOSE_LEVEL | ADDRESS | PAYMENT_METHOD | REVIEW | CONFIRMED | PAID | ABANDONED
    level: str | None = None
    price: Decimal | None = None
    address: BillingAddress | None = None
    method: TokenizedMethod | None = None
    new_method: bool = False  # given at checkout rather than the method on file: the payment charges it (B3)
    cart: Cart | None = None
    invoice: str | None = None
    payment_status: str | None = None


@workflow.defn
class CheckoutWorkflow:
    @workflow.init
    def __init__(self, request: CheckoutInput) -> None:
        self._request = request  # before any handler runs: an update may arrive in the first activation
        self._state = CheckoutState()
        self._confirmed = False
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, request: CheckoutInput) -> CheckoutState:
        workflow.set_current_details("Checkout open: choose an engagement level")
        try:
            await workflow.wait_condition(lambda: self._confirmed, timeout=request.abandon_after)
        except asyncio.TimeoutError:
            self._state.step = "ABANDONED"
            workflow.set_current_details("Cart abandoned: nothing was charged")
            return self._state
        cart = self._state.cart
        workflow.set_current_details(f"Purchasing {cart.level}: {cart.total} USD")
        invoice = await workflow.execute_activity_method(
            ConsultingActivities.issue_invoice,
            ConsultingInvoiceRequest(org_id=request.org_id, purchase_id=request.purchase_id, level=cart.level,
                                     amount=cart.price, tax_lines=cart.tax_lines, at=clock.now()), **ACTIVITY)
        self._state.invoice = invoice.number
        await workflow.execute_activity_method(
            StartingActivities.start_payment,
            ChargeInvoiceInput(org_id=request.org_id, invoice_id=invoice.invoice_id, invoice_number=invoice.number,
                               period=invoice.period, amount=invoice.amount_due, currency=invoice.currency,
                               notify_workflow_id=workflow.info().workflow_id,
                               method=self._state.method if self._state.new_method else None),
            **ACTIVITY)
        workflow.set_current_details(f"Waiting for the payment of {invoice.number}")
        # A declined card leaves the payment waiting for the customer's retry; the purchase completes when it pays.
        await workflow.wait_condition(lambda: self._state.payment_status == "PAID")
        self._state.step = "PAID"
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(key=f"consulting_confirmation:{request.purchase_id}", org_id=request.org_id,
                         kind="consulting_confirmation", at=clock.now(),
                         data={"invoice": invoice.number, "level": cart.level, "amount": str(cart.total),
                               "currency": "USD"}), **EMAIL)
        workflow.set_current_details(f"Purchased: {invoice.number} paid, confirmation e-mailed")
        return self._state

    @workflow.update
    def choose_level(self, level: str, price: Decimal) -> CheckoutState:
        self._state.level, self._state.price, self._state.cart = level, price, None
        self._state.step = "ADDRESS"
        return self._state

    @choose_level.validator
    def _check_level(self, level: str, price: Decimal) -> None:
        self._require_checkout_live()
        if not level.strip() or price <= 0:
            raise ValueError("level: choose an engagement level with a positive price")

    @workflow.update
    def set_billing_address(self, address: BillingAddress) -> CheckoutState:
        self._state.address, self._state.cart, self._state.step = address, None, "PAYMENT_METHOD"
        return self._state

    @set_billing_address.validator
    def _check_address(self, address: BillingAddress) -> None:
        self._require_checkout_live()
        if self._state.level is None:
            raise ValueError("choose an engagement level first")

    @workflow.update
    def set_payment_method(self, method: TokenizedMethod, new_method: bool = False) -> CheckoutState:
        self._state.method, self._state.new_method, self._state.step = method, new_method, "REVIEW"
        return self._state

    @set_payment_method.validator
    def _check_method(self, method: TokenizedMethod, new_method: bool = False) -> None:
        self._require_checkout_live()
        if self._state.address is None:
            raise ValueError("give the billing address first")
        if not method.token:
            raise ValueError("payment_method: no tokenized method given")

    @workflow.update
    async def review(self) -> Cart:
        """The cart the customer confirms: price, the Flex Consulting tax of their address (C3), total."""
        async with self._lock:
            address = self._state.address
            quote = await workflow.execute_activity_method(
                ConsultingActivities.price, CartRequest(amount=self._state.price, country=address.country,
                                                        state=address.state, tax_id=address.tax_id,
                                                        at=clock.now()), **ACTIVITY)
            self._state.cart = Cart(level=self._state.level, price=self._state.price, tax_lines=quote.lines,
                                    tax=quote.tax, total=self._state.price + quote.tax)
            workflow.set_current_details(f"Cart: {self._state.cart.total} USD; waiting for confirmation")
            return self._state.cart

    @review.validator
    def _check_review(self) -> None:
        self._require_checkout_live()
        if self._state.method is None:
            raise ValueError("choose a payment method first")

    @workflow.update
    def confirm(self) -> CheckoutState:
        self._confirmed, self._state.step = True, "CONFIRMED"
        return self._state

    @confirm.validator
    def _check_confirm(self) -> None:
        self._require_checkout_live()
        if self._state.cart is None:
            raise ValueError("review the cart before confirming the purchase")

    @workflow.signal
    def payment_outcome(self, notice: PaymentNotice) -> None:
        self._state.payment_status = notice.status

    @workflow.query
    def state(self) -> CheckoutState:
        return self._state

    def _require_checkout_live(self) -> None:
        if self._confirmed or self._state.step == "ABANDONED":
            raise ValueError(f"the checkout is {self._state.step.lower()}: start a new one")
