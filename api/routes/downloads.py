"""Invoice downloads (SPEC G4): the PDF, the CSV, and the usage details as CSV, streamed from the database.
Authorised by an API key (Access.READ_BILLING, I2) or by the session of a member signed in on the pages."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import organization, principal, require
from api.context import ApiContext, context
from api.pages.routes import env
from api.pages.session import current_member, may
from api.problems import ApiProblem, not_found
from billing.emails import bank_details
from billing.permissions import Access
from services import documents, invoices
from store.db import Database

router = APIRouter(tags=["invoices"])
Ctx = Annotated[ApiContext, Depends(context)]
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bk_…`; or the pages' "
                                                   "session cookie")
PDF_LINES = 1_000  # the PDF lists the first 1,000 usage lines; the usage CSV has every one


async def reader(request: Request, ctx: Ctx,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                 org: Annotated[str | None, Query(description="operator keys only: the organization to act on",
                                                  max_length=64)] = None) -> str:
    """The organization whose invoice is downloaded: the API key's (401/404/403 as every API route) or, without
    a key, the signed-in member's; another organization's invoice is 404 either way (I2)."""
    if credentials is not None:
        caller = await principal(request, credentials, ctx)
        org_id = await organization(caller, ctx, org)
        require(caller, Access.READ_BILLING)
        return org_id
    member = await current_member(request)
    if member is None:
        raise ApiProblem(401, "Unauthorized", "give an API key (Authorization: Bearer <key>) or sign in on the pages",
                         headers={"WWW-Authenticate": "Bearer"})
    if org is not None and org != member.org_id:
        raise not_found(f"no organization {org!r}")
    if not may(member, Access.READ_BILLING):
        raise ApiProblem(403, "Forbidden", f"a {member.role.title} may not {Access.READ_BILLING.value}")
    return member.org_id


Reader = Annotated[str, Depends(reader)]


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def invoice_pdf_html(db: Database, org_id: str, number: str, lines: int = PDF_LINES) -> str:
    """The HTML the PDF is printed from: every G2 section, the two charts as SVG, the first `lines` usage lines;
    a tax invoice (or an INVOICED bill) with the bank details to pay it by transfer."""
    detail = invoices.invoice_detail(db, org_id, number, usage_limit=lines)
    charts = {name: _data_uri(svg) for name, svg in documents.charts(detail).items()}
    return env.get_template("pdf/invoice.html").render(d=detail, charts=charts, bank_details=bank_details(),
                                                        bank=detail.status.value == "INVOICED")


def invoice_pdf(db: Database, org_id: str, number: str, lines: int = PDF_LINES) -> bytes:
    return documents.pdf_from_html(invoice_pdf_html(db, org_id, number, lines))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"}


@router.get("/invoices/{number}/pdf", operation_id="getInvoicePdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}, "description": "the invoice as PDF"}})
async def invoice_pdf_route(number: str, org: Reader, ctx: Ctx) -> Response:
    """G4: the invoice as PDF (a tax invoice's with the bank details)."""
    pdf = await asyncio.to_thread(invoice_pdf, ctx.db, org, number)
    return Response(pdf, media_type="application/pdf", headers=_attachment(f"{number}.pdf"))


def _csv_source(db: Database, org_id: str, number: str) -> tuple[invoices.InvoiceDetail, int]:
    invoice = invoices.find_invoice(db, org_id, number)
    return invoices.invoice_detail(db, org_id, number, usage_limit=0), invoices.lines_source(db, invoice)


@router.get("/invoices/{number}/csv", operation_id="getInvoiceCsv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "the invoice as CSV"}})
async def invoice_csv_route(number: str, org: Reader, ctx: Ctx) -> StreamingResponse:
    """G4: the invoice as CSV: a `line` record per usage line, then its totals and tax lines."""
    detail, source = await asyncio.to_thread(_csv_source, ctx.db, org, number)
    return StreamingResponse(documents.invoice_csv(ctx.db, detail, source), media_type="text/csv; charset=utf-8",
                             headers=_attachment(f"{number}.csv"))


@router.get("/invoices/{number}/usage.csv", operation_id="getInvoiceUsageCsv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "the usage details as CSV"}})
async def usage_csv_route(number: str, org: Reader, ctx: Ctx) -> StreamingResponse:
    """G2/G4: Usage Details as CSV, streamed from the database a batch at a time (100,000s of lines)."""
    def source() -> int:
        return invoices.lines_source(ctx.db, invoices.find_invoice(ctx.db, org, number))

    chunks = documents.usage_csv(ctx.db, await asyncio.to_thread(source))
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=_attachment(f"{number}-usage.csv"))
