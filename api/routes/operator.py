"""Operator endpoints (operator keys only): start a month-end (SPEC H1, what the Schedule does on the 1st) and
settle one organization for a period."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import operator_only
from api.context import ApiContext, context
from api.problems import ApiProblem, FieldError, Problem, not_found
from billing.invoicing import period_of
from contracts.flows import SettleResult
from store.tables import Organization

Ctx = Annotated[ApiContext, Depends(context)]
PERIOD = Field(pattern=r"^2\d{3}-(0[1-9]|1[0-2])$", description="a month that has ended, YYYY-MM",
               examples=["2027-01"])

router = APIRouter(prefix="/operator", tags=["operator"], dependencies=[operator_only()], responses={
    400: {"model": Problem, "content": {"application/problem+json": {}}, "description": "the body is not JSON"},
    403: {"model": Problem, "content": {"application/problem+json": {}}, "description": "not an operator key"}})


class MonthEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = PERIOD


class MonthEndStarted(BaseModel):
    period: str
    workflow_id: str  # MonthEndWorkflow: follow it in the Temporal UI or `temporal workflow describe`


class SettlementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str = Field(min_length=1, max_length=64)
    period: str = PERIOD


async def _ended(ctx: ApiContext, period: str) -> None:
    """Only a month that has ended is settled: the cycle under way keeps its PENDING invoice (G0)."""
    today = await ctx.today()
    if period >= period_of(today):
        message = f"{period} has not ended (today is {today.isoformat()})"
        raise ApiProblem(422, "Unprocessable Content", message,
                         errors=[FieldError(field="body.period", message=message)])


@router.post("/month-end", status_code=202, response_model=MonthEndStarted, operation_id="startMonthEnd")
async def start_month_end(request: MonthEndIn, ctx: Ctx) -> MonthEndStarted:
    """Start the month-end of a period: every organization's settlement, 50 at a time. Answers at once with the
    workflow's id (a month-end of many organizations takes a while); starting it again finds the first (H1)."""
    await _ended(ctx, request.period)
    handle = await ctx.billing.start_month_end(request.period)
    return MonthEndStarted(period=request.period, workflow_id=handle.id)


@router.post("/settlements", response_model=SettleResult, operation_id="settleOrganization", responses={
    200: {"links": {"GetInvoice": {"operationId": "getInvoice",
                                   "parameters": {"number": "$response.body#/invoice/number",
                                                  "org": "$request.body#/org"},
                                   "description": "the settled invoice (G2)"}}}})
async def settle(request: SettlementIn, ctx: Ctx) -> SettleResult:
    """Settle one organization for a period (its month-end) and answer the invoice; a second request answers the
    same settlement (H1: one per organization and period)."""
    await _ended(ctx, request.period)

    def exists() -> bool:
        with ctx.db.session() as s:
            return s.get(Organization, request.org) is not None

    if not await asyncio.to_thread(exists):
        raise not_found(f"no organization {request.org!r}")
    return await ctx.billing.settle(request.org, request.period)
