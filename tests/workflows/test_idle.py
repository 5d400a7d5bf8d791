"""starter/idle.py: when a workflow rests on something outside itself, read from its history alone."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType as E
from temporalio.api.history.v1 import HistoryEvent

from starter.idle import rest_of


def history(*kinds: int, **links: int) -> list[HistoryEvent]:
    """Events 1..n of the given kinds; `links` sets `<attributes>.<field>` on the event named by its id."""
    events = [HistoryEvent(event_id=i, event_type=kind) for i, kind in enumerate(kinds, start=1)]
    for name, value in links.items():
        event_id, attributes, field = name.split("__")
        setattr(getattr(events[int(event_id.removeprefix("e")) - 1], attributes), field, value)
    return events


STARTED = (E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
           E.EVENT_TYPE_WORKFLOW_TASK_STARTED, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)


def test_a_scheduled_or_running_workflow_task_is_work():
    assert rest_of(history(*STARTED[:2])).busy == "a workflow task is scheduled or running"
    assert rest_of(history(*STARTED[:3])).busy == "a workflow task is scheduled or running"


def test_waiting_on_a_timer_or_a_signal_is_rest():
    assert rest_of(history(*STARTED)).busy is None
    assert rest_of(history(*STARTED, E.EVENT_TYPE_TIMER_STARTED, E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)).busy \
        is None


def test_an_activity_is_work_until_its_result_is_processed():
    scheduled = history(*STARTED, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    assert "activity" in rest_of(scheduled).busy  # running, or waiting for its next attempt
    done = history(*STARTED, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                   E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                   e7__activity_task_completed_event_attributes__scheduled_event_id=5)
    assert "ACTIVITY_TASK_COMPLETED" in rest_of(done).busy  # its result has not reached the workflow yet
    processed = history(*STARTED, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                        E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, *STARTED[1:],
                        e7__activity_task_completed_event_attributes__scheduled_event_id=5)
    assert rest_of(processed).busy is None


def test_a_signal_not_yet_processed_is_work():
    assert "SIGNALED" in rest_of(history(*STARTED, E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)).busy


def test_a_signal_to_another_workflow_is_work_until_delivered():
    sent = history(*STARTED, E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
    assert "signal to another workflow" in rest_of(sent).busy
    delivered = history(*STARTED, E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
                        E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED, *STARTED[1:],
                        e6__external_workflow_execution_signaled_event_attributes__initiated_event_id=5)
    assert rest_of(delivered).busy is None


def test_a_closed_workflow_is_at_rest():
    rest = rest_of(history(*STARTED, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED))
    assert rest.busy is None and rest.closed
