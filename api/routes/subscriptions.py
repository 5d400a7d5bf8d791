"""Subscriptions and activation codes (SPEC D1, D2): sales adds subscriptions (operator keys); the customer applies
the e-mailed activation code; support re-issues a lost one (operator keys)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller, OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from services import subscriptions
from services.subscriptions import (ActivationApplied, ActivationView, CodeReissued, NewSubscription,
                                    SubscriptionAdded, SubscriptionView)

router = APIRouter(tags=["subscriptions"])
Ctx = Annotated[ApiContext, Depends(context)]


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64, description="as e-mailed: XXXXX-XXXXX-XXXXX-XXXXX")


@router.get("/subscriptions", response_model=list[SubscriptionView], operation_id="listSubscriptions",
            dependencies=[needs(Access.READ_BILLING)])
async def list_subscriptions(org: OrgId, ctx: Ctx) -> list[SubscriptionView]:
    return await asyncio.to_thread(subscriptions.subscriptions, ctx.db, org)


@router.post("/subscriptions", response_model=SubscriptionAdded, status_code=201, operation_id="addSubscription",
             dependencies=[needs(Access.OPERATE)])
async def add_subscription(subscription: NewSubscription, org: OrgId, ctx: Ctx) -> SubscriptionAdded:
    """D1: a subscription sold through sales (operator keys). With `activation_code: pending`, its code is e-mailed
    to the billing contact and the 30 days of use are counted (D2)."""
    return await subscriptions.add(ctx.billing, org, subscription)


@router.get("/activation", response_model=list[ActivationView], operation_id="listActivations",
            dependencies=[needs(Access.READ_BILLING)])
async def list_activations(org: OrgId, ctx: Ctx) -> list[ActivationView]:
    """D2: each subscription's activation, newest first: applied or not, codes issued, the grace period's end."""
    return await asyncio.to_thread(subscriptions.activations, ctx.db, org)


@router.post("/activation/apply", response_model=ActivationApplied, operation_id="applyActivationCode",
             dependencies=[needs(Access.CHANGE_BILLING)])
async def apply_code(body: CodeIn, org: OrgId, caller: Caller, ctx: Ctx) -> ActivationApplied:
    """D2: apply the activation code; a wrong or superseded code is refused (409) and changes nothing."""
    state = await ctx.billing.apply_activation_code(org, body.code, applied_by=caller.name)
    return subscriptions.applied(state)


@router.post("/activation/reissue", response_model=CodeReissued, operation_id="reissueActivationCode",
             dependencies=[needs(Access.OPERATE)])
async def reissue_code(org: OrgId, ctx: Ctx) -> CodeReissued:
    """D2: support re-issues a lost code (operator keys): the new one is e-mailed, the old stops working, the grace
    period goes on."""
    return CodeReissued(codes_issued=await ctx.billing.reissue_activation_code(org))
