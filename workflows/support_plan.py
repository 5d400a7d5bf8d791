"""An organization's support plan (SPEC B1): a change is recorded at once and takes effect on the 1st of next
month, a timer to that instant that operators see; cancelling during the trial stops billing immediately."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.options import ACTIVITY, EMAIL
    from contracts import clock
    from contracts.email import EmailActivities, EmailRequest
    from contracts.support import PlanChangeRequest, SupportActivities
    from billing.support import PlanChange, SupportPlan



class SupportPlanInput(BaseModel):
    org_id: str
    plan: SupportPlan = SupportPlan.BASIC
    pending: PlanChange | None = None  # carried over continue-as-new


class ChangePlan(BaseModel):
    plan: SupportPlan
    requested_by: str = "customer"


@workflow.defn
class SupportPlanWorkflow:
    @workflow.init
    def __init__(self, request: SupportPlanInput) -> None:
        # Set from the input here, not in run(): an update can arrive in the very first activation.
        self._org, self._plan, self._pending = request.org_id, request.plan, request.pending
        self._changed = False

    @workflow.run
    async def run(self, request: SupportPlanInput) -> None:
        changes = 0
        while changes < 100:
            timeout = None
            if self._pending is not None:
                effective = datetime.combine(self._pending.effective, time(0), tzinfo=timezone.utc)
                timeout = max(effective - clock.now(), timedelta(0))
                workflow.set_current_details(f"{self._plan.value.title()} until {self._pending.effective}; then "
                                             f"{self._pending.plan.value.title()} (timer to that instant)")
            else:
                workflow.set_current_details(f"{self._plan.value.title()} support")
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=timeout)
            except asyncio.TimeoutError:
                self._plan, self._pending = self._pending.plan, None  # the change took effect
            self._changed = False
            changes += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(SupportPlanInput(org_id=self._org, plan=self._plan, pending=self._pending))

    @workflow.update
    async def change_plan(self, request: ChangePlan) -> PlanChange:
        change = await workflow.execute_activity_method(
            SupportActivities.record_change, PlanChangeRequest(org_id=self._org, plan=request.plan,
                                                               at=clock.now()), **ACTIVITY)
        if change.billing_stopped is not None:
            self._plan, self._pending = change.plan, None
            note = f"Cancelled during the trial: billing stopped on {change.billing_stopped}."
        else:
            self._pending = change
            note = "Billing changes on the first day of the next month."
        self._changed = True
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(key=f"support_plan_changed:{self._org}:{clock.now().isoformat()}", org_id=self._org,
                         kind="support_plan_changed", at=clock.now(),
                         data={"plan": change.plan.value.title(), "effective": change.effective.isoformat(),
                               "note": note}), **EMAIL)
        return change

    @change_plan.validator
    def _check(self, request: ChangePlan) -> None:
        target = self._pending.plan if self._pending is not None else self._plan
        if request.plan == target:
            raise ValueError(f"plan: the organization is already on (or moving to) {request.plan.value}")
