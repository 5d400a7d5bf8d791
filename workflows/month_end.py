"""Month-end: start one settlement per organization for the period just ended (SPEC D4-D6, H1).

Started by a Temporal Schedule at 00:00 UTC on the 1st (and by the simulator). It pages through the
organizations and starts their settlements in batches from an activity; settlement IDs are business
keys, so a duplicate fire or a restart starts nothing twice. It continues as new to keep its history small.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from contracts.options import PAGE
    from contracts import clock
    from contracts.starting import StartSettlementsRequest, StartingActivities
    from billing.invoicing import period_before

PAGES_PER_RUN = 20
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class MonthEndInput(BaseModel):
    period: str | None = None  # default: the month that ended at the (scheduled) start
    after_org_id: str | None = None  # continue-as-new cursor
    page_size: int = 500
    started: int = 0
    already_started: int = 0


class MonthEndResult(BaseModel):
    period: str
    started: int
    already_started: int


@workflow.defn
class MonthEndWorkflow:
    @workflow.run
    async def run(self, request: MonthEndInput) -> MonthEndResult:
        period = request.period or period_before(self._scheduled_time())
        cursor, started, already = request.after_org_id, request.started, request.already_started
        for _ in range(PAGES_PER_RUN):
            workflow.set_current_details(f"Month-end {period}: {started} settlements started, "
                                         f"{already} already running or done")
            page = await workflow.execute_activity_method(
                StartingActivities.start_settlements,
                StartSettlementsRequest(period=period, after_org_id=cursor, limit=request.page_size), **PAGE)
            started, already = started + page.started, already + page.already_started
            if page.last_org_id is None:
                workflow.set_current_details(f"Month-end {period}: {started} settlements started, "
                                             f"{already} already running or done")
                return MonthEndResult(period=period, started=started, already_started=already)
            cursor = page.last_org_id
        workflow.continue_as_new(MonthEndInput(period=period, after_org_id=cursor, page_size=request.page_size,
                                               started=started, already_started=already))

    @staticmethod
    def _scheduled_time() -> datetime:
        """When the Schedule meant to run this (a late or catch-up fire still settles the right month)."""
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
        return scheduled or clock.now()
