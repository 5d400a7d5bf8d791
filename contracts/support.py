"""Contract of the support activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime
from pydantic import BaseModel
from temporalio import activity
from billing.support import PlanChange, SupportPlan


class PlanChangeRequest(BaseModel):
    org_id: str
    plan: SupportPlan
    at: datetime


class SupportActivities:
    """What workflows call (activities/support.py implements it, registered under the same names)."""

    @activity.defn(name='record_support_plan_change')
    def record_change(self, request: PlanChangeRequest) -> PlanChange:
        """The record_support_plan_change activity."""
