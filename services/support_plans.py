"""The support plan as the customer reads and changes it (SPEC B1): the plan in force, a change waiting for the 1st
of next month, the trial; a change goes through the organization's SupportPlanWorkflow (BillingClient)."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from sqlmodel import select
from temporalio.common import (SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy)

from billing.support import PlanChange, SupportPlan, plan_prices
from contracts.flows import ORG_ID, support_plan_workflow_id
from services.client import BillingClient
from store.db import Database
from store.tables import SupportPlanPeriod
from workflows.support_plan import SupportPlanInput, SupportPlanWorkflow


class PlanPriceView(BaseModel):
    rate: Decimal  # share of the month's usage
    minimum: Decimal  # USD a month


class PendingChange(BaseModel):
    plan: SupportPlan
    effective: date  # B1: the first day of the next month


class SupportPlanView(BaseModel):
    plan: SupportPlan
    since: date | None
    trial_ends: date | None
    billing_stopped: date | None  # B1: cancelled during the trial, billing stopped that day
    price: PlanPriceView | None  # None for Basic (free)
    pending: PendingChange | None


class PlanChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: SupportPlan


def _periods(db: Database, org_id: str) -> list[SupportPlanPeriod]:
    with db.session() as s:
        return list(s.exec(select(SupportPlanPeriod).where(SupportPlanPeriod.org_id == org_id)
                           .order_by(SupportPlanPeriod.start_date, SupportPlanPeriod.id)))


def _in_force(periods: list[SupportPlanPeriod], on: date) -> tuple[SupportPlanPeriod | None, SupportPlanPeriod | None]:
    current = next((p for p in reversed(periods) if p.start_date <= on and (p.end_date is None or on < p.end_date)),
                   None)
    pending = next((p for p in periods if p.start_date > on), None)
    return current, pending


def support_plan(db: Database, org_id: str, on: date) -> SupportPlanView:
    current, pending = _in_force(_periods(db, org_id), on)
    plan = SupportPlan(current.plan) if current is not None else SupportPlan.BASIC
    price = plan_prices().get(plan)
    return SupportPlanView(
        plan=plan, since=current.start_date if current else None, trial_ends=current.trial_ends if current else None,
        billing_stopped=current.billing_stopped if current else None,
        price=None if plan is SupportPlan.BASIC or price is None else PlanPriceView(rate=price.rate,
                                                                                  minimum=price.minimum),
        pending=None if pending is None else PendingChange(plan=SupportPlan(pending.plan),
                                                           effective=pending.start_date))


async def change(billing: BillingClient, org_id: str, plan: SupportPlan, requested_by: str) -> PlanChange:
    """B1 through BillingClient.change_support_plan. An organization that never chose a plan is on Basic and has no
    support-plan workflow yet: it is started first, from the plan in force (and any change waiting), so the change
    has a workflow to go to."""
    on = (await billing.clock()).date()
    current, pending = _in_force(await asyncio.to_thread(_periods, billing.db, org_id), on)
    start = SupportPlanInput(
        org_id=org_id, plan=SupportPlan(current.plan) if current else SupportPlan.BASIC,
        pending=None if pending is None else PlanChange(plan=SupportPlan(pending.plan), effective=pending.start_date))
    await billing.temporal.start_workflow(
        SupportPlanWorkflow.run, start, id=support_plan_workflow_id(org_id), task_queue=billing.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)]),
        static_summary=f"Support plan of {org_id}")
    return await billing.change_support_plan(org_id, plan, requested_by=requested_by)
