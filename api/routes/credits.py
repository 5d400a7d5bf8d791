"""Available Credits (SPEC D3, D1): the table as the customer reads it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from services import credits
from services.credits import AvailableCredits

router = APIRouter(tags=["credits"])
Ctx = Annotated[ApiContext, Depends(context)]


@router.get("/credits", response_model=AvailableCredits, operation_id="getCredits",
            dependencies=[needs(Access.READ_BILLING)])
async def get_credits(org: OrgId, ctx: Ctx) -> AvailableCredits:
    """D3 as of today: active lines (used / total), upcoming ones, History (expired), Elastic Billing enabled and
    active, and a monthly commitment's month: usage so far against the month's commitment, and the bank (D1)."""
    return await asyncio.to_thread(credits.available_credits, ctx.db, org, await ctx.today())
