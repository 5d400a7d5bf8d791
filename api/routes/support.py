"""Support plans (SPEC B1) and support cases (B2: project roles view and raise, Project Read Only only views, an
Organization Owner does both for every project)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Caller, OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access, caller_for_key
from billing.support import PlanChange
from services import support_cases, support_plans
from services.apikeys import Principal
from services.support_cases import SupportCaseIn, SupportCaseView
from services.support_plans import PlanChangeIn, SupportPlanView

router = APIRouter(tags=["support"])
Ctx = Annotated[ApiContext, Depends(context)]


def _b2(caller: Principal):
    return caller_for_key(caller.name, caller.role, caller.project)


@router.get("/support-plan", response_model=SupportPlanView, operation_id="getSupportPlan",
            dependencies=[needs(Access.READ_BILLING)])
async def get_support_plan(org: OrgId, ctx: Ctx) -> SupportPlanView:
    """B1: the plan in force, its price, the trial, and a change waiting for the first day of next month."""
    return await asyncio.to_thread(support_plans.support_plan, ctx.db, org, await ctx.today())


@router.post("/support-plan", response_model=PlanChange, operation_id="changeSupportPlan",
             dependencies=[needs(Access.CHANGE_BILLING)])
async def change_support_plan(change: PlanChangeIn, org: OrgId, caller: Caller, ctx: Ctx) -> PlanChange:
    """B1: upgrade, downgrade or cancel (`basic`): effective on the first day of next month; cancelling during the
    trial stops billing at once. The plan already in force (or already coming) is 409 Nothing to do."""
    return await support_plans.change(ctx.billing, org, change.plan, requested_by=caller.name)


@router.get("/support-cases", response_model=list[SupportCaseView], operation_id="listSupportCases")
async def list_support_cases(
        org: OrgId, caller: Caller, ctx: Ctx,
        project: Annotated[str | None, Query(max_length=100, description="the project; without it, every project "
                                                                           "(Organization Owner), or a project "
                                                                           "key's own")] = None,
) -> list[SupportCaseView]:
    """B2: a project's support cases, newest first."""
    return await asyncio.to_thread(support_cases.list_cases, ctx.db, org, _b2(caller), project)


@router.post("/support-cases", response_model=SupportCaseView, status_code=201, operation_id="raiseSupportCase")
async def raise_support_case(case: SupportCaseIn, org: OrgId, caller: Caller, ctx: Ctx) -> SupportCaseView:
    """B2: raise a case for a project (any project role but Project Read Only, or an Organization Owner)."""
    return await asyncio.to_thread(support_cases.raise_case, ctx.db, org, _b2(caller), case, await ctx.now())
