"""What can be done with an invoice (SPEC F3, G2, E2, E4, D10): retry, pay now, authorize, record a wire/ACH
payment, forgive, refund. Each starts, signals or updates the invoice's payment workflow through BillingClient;
none charges anything here."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import Caller, OrgId, needs
from api.context import ApiContext, context
from api.problems import Problem
from billing.permissions import Access
from contracts.flows import payment_workflow_id
from contracts.payments import PaymentState
from services.client import UsageIn
from services.invoices import find_invoice

Ctx = Annotated[ApiContext, Depends(context)]


def _problem(description: str) -> dict:
    return {"model": Problem, "content": {"application/problem+json": {}}, "description": description}


router = APIRouter(tags=["invoice actions"], responses={
    400: _problem("the body is not JSON"),
    403: _problem("the key's role may not do this"),
    409: _problem("nothing to do (e.g. the invoice is already paid), or refused by a rule: `detail` says which")})

# OpenAPI links: an action's answer names the invoice, whose detail and payments can be read next.
_INVOICE_LINKS = {
    "GetInvoice": {"operationId": "getInvoice", "parameters": {"number": "$response.body#/invoice_number"},
                   "description": "the invoice the action was taken on (G2)"},
    "ListInvoicePayments": {"operationId": "listInvoicePayments",
                            "parameters": {"number": "$response.body#/invoice_number"},
                            "description": "the invoice's payments, this action's among them"},
}


class PaymentRequested(BaseModel):
    """A signal sent to the invoice's payment workflow, which acts on it in the background: read the invoice's
    payments to follow it."""

    invoice_number: str
    workflow_id: str
    requested: Literal["retry", "authorize"]


class PaymentIn(BaseModel):
    """SPEC D10: a wire transfer or ACH payment received, in the invoice's currency."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["wire", "ach"]
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2)
    reference: str | None = Field(default=None, max_length=200, description="the bank's reference of the transfer")

    _no_float = field_validator("amount", mode="before")(classmethod(lambda cls, v: UsageIn._no_float(v)))


class ForgiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="why it is forgiven: kept in the audit record")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a forgiveness needs a reason (it is audited)")
        return value.strip()


async def _number(ctx: ApiContext, org: str, number: str) -> str:
    """The invoice's number when it is the organization's (404 otherwise, I2)."""
    return (await asyncio.to_thread(find_invoice, ctx.db, org, number)).number


@router.post("/invoices/{number}/retry", status_code=202, response_model=PaymentRequested,
             operation_id="retryInvoicePayment", dependencies=[needs(Access.CHANGE_BILLING)],
             responses={202: {"links": _INVOICE_LINKS}})
async def retry(number: str, org: OrgId, ctx: Ctx, caller: Caller) -> PaymentRequested:
    """F3: retry the invoice's failed payment (what the e-mail's RETRY button does): a new attempt on the payment
    method on file. 409 when the invoice has not failed (e.g. a second retry after the first paid)."""
    number = await _number(ctx, org, number)
    workflow_id = await ctx.billing.retry_payment(org, number, requested_by=caller.name)
    return PaymentRequested(invoice_number=number, workflow_id=workflow_id, requested="retry")


@router.post("/invoices/{number}/authorize", status_code=202, response_model=PaymentRequested,
             operation_id="authorizeInvoicePayment", dependencies=[needs(Access.CHANGE_BILLING)],
             responses={202: {"links": _INVOICE_LINKS}})
async def authorize(number: str, org: OrgId, ctx: Ctx) -> PaymentRequested:
    """E4: the customer authorized an India (RBI) charge above INR 15,000 with the issuer. 409 when no payment of
    the invoice awaits authorization."""
    number = await _number(ctx, org, number)
    number = await ctx.billing.authorize_payment(org, number)
    return PaymentRequested(invoice_number=number, workflow_id=payment_workflow_id(number), requested="authorize")


@router.post("/invoices/{number}/pay-now", response_model=PaymentState, operation_id="payInvoiceNow",
             dependencies=[needs(Access.CHANGE_BILLING)], responses={200: {"links": _INVOICE_LINKS}})
async def pay_now(number: str, org: OrgId, ctx: Ctx, caller: Caller) -> PaymentState:
    """G2/E2 PAY NOW: charge the method on file on-session for what the invoice still has due; answers the
    payment's state once the attempt is decided."""
    number = await _number(ctx, org, number)
    return await ctx.billing.pay_now(org, number, requested_by=caller.name)


@router.post("/invoices/{number}/payments", response_model=PaymentState, operation_id="recordInvoicePayment",
             dependencies=[needs(Access.OPERATE)], responses={200: {"links": _INVOICE_LINKS}})
async def record_payment(number: str, payment: PaymentIn, org: OrgId, ctx: Ctx, caller: Caller) -> PaymentState:
    """D10 (operator keys): a wire or ACH payment received for the invoice; a partial one leaves the rest due.
    Operator only: the payment is confirmed by the bank statement, not by the customer's word."""
    number = await _number(ctx, org, number)
    return await ctx.billing.record_payment(org, number, payment.method, payment.amount, recorded_by=caller.name,
                                            reference=payment.reference)


@router.post("/invoices/{number}/forgive", response_model=PaymentState, operation_id="forgiveInvoice",
             dependencies=[needs(Access.OPERATE)], responses={200: {"links": _INVOICE_LINKS}})
async def forgive(number: str, forgiveness: ForgiveIn, org: OrgId, ctx: Ctx, caller: Caller) -> PaymentState:
    """D10 (operator keys): forgive what the invoice still has due (FORGIVEN), audited with the key's name and the
    reason."""
    number = await _number(ctx, org, number)
    return await ctx.billing.forgive_invoice(org, number, forgiveness.reason, forgiven_by=caller.name)


@router.post("/invoices/{number}/refund", response_model=PaymentState, operation_id="refundInvoice",
             dependencies=[needs(Access.OPERATE)], responses={200: {"links": _INVOICE_LINKS}})
async def refund(number: str, org: OrgId, ctx: Ctx, caller: Caller) -> PaymentState:
    """D10 (operator keys): refund the invoice's card/PayPal charges through its payment workflow; D2's
    non-refundable charges are refused (409)."""
    number = await _number(ctx, org, number)
    return await ctx.billing.refund_payment(org, number, requested_by=caller.name)
