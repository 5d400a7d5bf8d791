"""Usage (SPEC I3, G0): a batch of rated lines, each with the backend's own unique key, so a re-sent or overlapping
batch is counted once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import OrgId, needs
from api.context import ApiContext, context
from api.problems import Problem
from billing.permissions import Access
from services.client import UsageIn, UsageRecorded

MAX_LINES = 10_000  # I3 asks for at least 5,000 per request; 10,000 lines are ~3 MB, under the body limit

router = APIRouter(tags=["usage"], responses={
    400: {"model": Problem, "content": {"application/problem+json": {}}, "description": "the body is not JSON"},
    413: {"model": Problem, "content": {"application/problem+json": {}},
          "description": "the body is over the size limit (16 MB): send fewer lines per request"},
    403: {"model": Problem, "content": {"application/problem+json": {}},
          "description": "the key's role may not change billing (Organization Owner or Billing Admin)"}})
Ctx = Annotated[ApiContext, Depends(context)]


class UsageLineIn(UsageIn):
    """A rated usage line; `key` is required here (I3): the backend's own identifier of the line, unique within the
    organization, e.g. `<meter>:<deployment>:<hour>`."""

    key: str = Field(min_length=1, max_length=200)


class UsageBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[UsageLineIn] = Field(min_length=1, max_length=MAX_LINES)


@router.post("/usage", response_model=UsageRecorded, operation_id="recordUsage",
             dependencies=[needs(Access.CHANGE_BILLING)])
async def record_usage(batch: UsageBatch, org: OrgId, ctx: Ctx) -> UsageRecorded:
    """Record a batch of rated usage lines (up to 10,000). A line whose `key` was already recorded for the
    organization is a duplicate: neither stored nor added to the cycle's running total again (I3, G0). Answers how
    many lines were recorded and how many were duplicates."""
    return await ctx.billing.record_usage(org, batch.lines)
