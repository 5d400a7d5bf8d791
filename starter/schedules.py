"""The month-end Schedule: MonthEndWorkflow at 00:00 UTC on the 1st of every month (SPEC D4, H4)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError,
                               ScheduleCalendarSpec, ScheduleHandle, ScheduleOverlapPolicy, SchedulePolicy,
                               ScheduleRange, ScheduleSpec, ScheduleUpdate, ScheduleUpdateInput)

from workflows.month_end import MonthEndInput, MonthEndWorkflow
from contracts.flows import TASK_QUEUE

MONTH_END_SCHEDULE_ID = "month-end"


def month_end_schedule(task_queue: str = TASK_QUEUE) -> Schedule:
    return Schedule(
        # The schedule appends the scheduled time to the ID; the workflow reads the period from that time.
        action=ScheduleActionStartWorkflow(MonthEndWorkflow.run, MonthEndInput(), id="month-end",
                                           task_queue=task_queue, static_summary="Month-end settlement of every organization"),
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(day_of_month=[ScheduleRange(1)], hour=[ScheduleRange(0)],
                                                          minute=[ScheduleRange(0)], second=[ScheduleRange(0)],
                                                          comment="00:00 UTC on the 1st")],
                          time_zone_name="UTC"),
        # An outage of up to a week still settles the month when the server is back; settlements are keyed
        # by organization and period, so a duplicate fire starts nothing twice.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL, catchup_window=timedelta(days=7)),
    )


async def ensure_month_end_schedule(client: Client, task_queue: str = TASK_QUEUE) -> ScheduleHandle:
    """Create the schedule, or bring an existing one up to date (idempotent, safe at every start)."""
    schedule = month_end_schedule(task_queue)
    try:
        return await client.create_schedule(MONTH_END_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(MONTH_END_SCHEDULE_ID)

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        return handle
