"""Support plan activities (SPEC B1): record plan changes (the settlement prices the month's support line)."""

from __future__ import annotations


from sqlmodel import Session, select
from temporalio import activity

from activities._context import activity_log_context
from store.db import Database
from billing.support import PlanChange, PlanPeriod, change_plan
from store.tables import SupportPlanPeriod
from contracts.support import PlanChangeRequest  # noqa: F401


def load_periods(s: Session, org_id: str) -> list[SupportPlanPeriod]:
    return list(s.exec(select(SupportPlanPeriod).where(SupportPlanPeriod.org_id == org_id)
                       .order_by(SupportPlanPeriod.start_date, SupportPlanPeriod.id)))


def _domain(rows: list[SupportPlanPeriod]) -> list[PlanPeriod]:
    return [PlanPeriod(plan=r.plan, start=r.start_date, end=r.end_date, trial_ends=r.trial_ends,
                       billing_stopped=r.billing_stopped) for r in rows]


class SupportActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="record_support_plan_change")
    def record_change(self, request: PlanChangeRequest) -> PlanChange:
        with activity_log_context(org_id=request.org_id, plan=request.plan) as log, self.db.session() as s:
            rows = load_periods(s, request.org_id)
            periods, change = change_plan(_domain(rows), request.plan, request.at.date())
            for row in rows:
                s.delete(row)
            s.flush()
            for p in periods:
                s.add(SupportPlanPeriod(org_id=request.org_id, plan=p.plan, start_date=p.start, end_date=p.end,
                                        trial_ends=p.trial_ends, billing_stopped=p.billing_stopped,
                                        recorded_at=request.at))
            log.info("support plan change recorded", effective=change.effective.isoformat())
            return change
