"""Invoices (SPEC G1, G2, D10, E4, F3): the list, one invoice, its payments, and the actions on it."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import TypeAdapter

from api.auth import OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from services import invoices
from services.invoices import InvoiceDetail, InvoicePage, PaymentRow, StatusFilter

router = APIRouter(tags=["invoices"])
_PAGE = TypeAdapter(InvoicePage)
Ctx = Annotated[ApiContext, Depends(context)]


@router.get("/invoices", response_model=InvoicePage, operation_id="listInvoices",
            dependencies=[needs(Access.READ_BILLING)])
async def list_invoices(
        org: OrgId, ctx: Ctx,
        status: Annotated[StatusFilter | None, Query(description="G1: pending (not paid yet), free (0.00), "
                                                                 "successful (paid), or a stored status")] = None,
        from_: Annotated[date | None, Query(alias="from", description="blank: the organization's creation "
                                                                      "date (G1)")] = None,
        to: Annotated[date | None, Query(description="blank: today (G1)")] = None,
        cursor: Annotated[str | None, Query(max_length=40, description="`next_cursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=invoices.MAX_PAGE)] = 50) -> Response:
    """G1: the organization's invoices, newest first, filtered by status and by date."""
    today = await ctx.today()

    def page() -> bytes:
        return _PAGE.dump_json(invoices.list_invoices(ctx.db, org, status=status, from_date=from_, to_date=to,
                                                      cursor=cursor, limit=limit, today=today))
    # Serialized once, here: `response_model` documents the page, and FastAPI would validate it again first.
    return Response(await asyncio.to_thread(page), media_type="application/json")


@router.get("/invoices/{number}", response_model=InvoiceDetail, operation_id="getInvoice",
            dependencies=[needs(Access.READ_BILLING)])
async def get_invoice(number: str, org: OrgId, ctx: Ctx) -> InvoiceDetail:
    """G2: one invoice with every section (running total, charts' data, summaries, payment details, usage)."""
    return await asyncio.to_thread(invoices.invoice_detail, ctx.db, org, number)


@router.get("/invoices/{number}/payments", response_model=list[PaymentRow], operation_id="listInvoicePayments",
            dependencies=[needs(Access.READ_BILLING)])
async def invoice_payments(number: str, org: OrgId, ctx: Ctx) -> list[PaymentRow]:
    """G2 Payment Details: every way the invoice was settled or attempted (credits, commitment, card attempts…)."""
    return await asyncio.to_thread(invoices.invoice_payments, ctx.db, org, number)
