"""Waiting until workflows rest on something outside themselves (a signal, a timer, a customer), with no hook in
the workflows: read from their histories, which every server (the time-skipping test server included) keeps.

A workflow is at rest when it is closed, or when its latest run has no workflow task scheduled or running, no
activity pending (an attempt running or waiting for its retry: the workflow's own work, not yet done), no signal
or cancellation it sent still on its way, no child it is starting, and nothing that arrived since its last
workflow task completed (a signal, a timer that fired, an activity's result) still unprocessed. Local activities
run inside a workflow task, so they are covered by it.

Why histories and not `describe()` alone: the time-skipping test server never reports `pending_workflow_task`,
and it reports an activity waiting for its retry as STARTED, so its description cannot tell a workflow at rest
from one whose signal is about to be processed. (Where a server does report a pending workflow task, it counts.)

A workflow may be at rest for an instant between two tasks (a task completes; an activity's result or a signal
schedules the next one), so the set is only at rest after two consecutive looks, a short pause apart, that both
find every workflow at rest with the same history length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

POLL = 0.02  # seconds between two looks
DEFAULT_TIMEOUT = timedelta(minutes=2)  # wall time the workflows may take to come to rest

E = EventType
_CLOSED = {E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
           E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
           E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW}
_TASK_OPEN = {E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_STARTED}
_TASK_CLOSED = {E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT}
# What a completed workflow task's commands record, or what changes nothing the workflow waits on: after the last
# completed task these leave it at rest. Any other event (a signal, a fired timer, a result) awakens it.
_QUIET = {E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
          E.EVENT_TYPE_ACTIVITY_TASK_STARTED, E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
          E.EVENT_TYPE_TIMER_STARTED, E.EVENT_TYPE_TIMER_CANCELED, E.EVENT_TYPE_MARKER_RECORDED,
          E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
          E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
          E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
          E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, E.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
          E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
          E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED, E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED_EXTERNALLY,
          E.EVENT_TYPE_ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY}
# Work the workflow started that is still on its way, by the event that started it -> the events that end it.
_ACTIVITY_ENDS = {E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
                  E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
                  E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
                  E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes"}
_INITIATED_ENDS = {
    E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED: "external_workflow_execution_signaled_event_attributes",
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED:
        "signal_external_workflow_execution_failed_event_attributes",
    E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
        "external_workflow_execution_cancel_requested_event_attributes",
    E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED:
        "request_cancel_external_workflow_execution_failed_event_attributes",
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: "child_workflow_execution_started_event_attributes",
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: "start_child_workflow_execution_failed_event_attributes",
}
_INITIATED = {E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signal to another workflow",
              E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "cancellation of another workflow",
              E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "child workflow start"}


@dataclass(frozen=True)
class Rest:
    """One look at a workflow: `busy` says what it is doing (None: at rest); `length` tells two looks apart."""

    busy: str | None
    length: int
    closed: bool = False


def rest_of(events: list[HistoryEvent]) -> Rest:
    """Whether the run whose history is `events` is at rest, and if not, on what it works."""
    length = len(events)
    if events and events[-1].event_type in _CLOSED:
        return Rest(None, length, closed=True)
    task_open = False
    last_completed = -1
    activities: dict[int, str] = {}
    initiated: dict[int, str] = {}
    for i, event in enumerate(events):
        kind = event.event_type
        if kind in _TASK_OPEN:
            task_open = True
        elif kind in _TASK_CLOSED:
            task_open = False
            if kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                last_completed = i
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif kind in _ACTIVITY_ENDS:
            activities.pop(getattr(event, _ACTIVITY_ENDS[kind]).scheduled_event_id, None)
        elif kind in _INITIATED:
            initiated[event.event_id] = _INITIATED[kind]
        elif kind in _INITIATED_ENDS:
            initiated.pop(getattr(event, _INITIATED_ENDS[kind]).initiated_event_id, None)
    if task_open:
        return Rest("a workflow task is scheduled or running", length)
    if activities:
        return Rest(f"activity {', '.join(sorted(set(activities.values())))} has not finished "
                    "(running, or waiting for its next attempt)", length)
    if initiated:
        return Rest(f"a {', '.join(sorted(set(initiated.values())))} is on its way", length)
    woken = [e for e in events[last_completed + 1:] if e.event_type not in _QUIET]
    if woken:
        return Rest(f"{EventType.Name(woken[0].event_type)} is not processed yet", length)
    return Rest(None, length)


async def look(client: Client, workflow_id: str) -> Rest:
    """The latest run of `workflow_id` (a continued-as-new workflow: its newest run)."""
    handle = client.get_workflow_handle(workflow_id)
    rest = rest_of([event async for event in handle.fetch_history_events()])
    if rest.busy is None and not rest.closed:
        # A server that reports it (not the test server) also shows a task its history does not hold yet: a
        # failed workflow task's next attempt.
        if (await handle.describe()).raw_description.HasField("pending_workflow_task"):
            return Rest("a workflow task is scheduled or running", rest.length)
    return rest


async def wait_until_at_rest(client: Client, workflow_ids: Iterable[str],
                             timeout: timedelta = DEFAULT_TIMEOUT) -> None:
    """Return once every workflow in `workflow_ids` is closed or rests on something outside itself; raise
    TimeoutError naming the ones still at work after `timeout` of wall time. An unknown workflow ID is an error
    (RPCError), as it is for any call on it."""
    ids = list(dict.fromkeys(workflow_ids))
    if not ids:
        return
    deadline = time.monotonic() + timeout.total_seconds()
    previous: list[Rest] | None = None
    while True:
        looks = list(await asyncio.gather(*(look(client, w) for w in ids)))
        if all(r.busy is None for r in looks):
            if looks == previous:
                return
            previous = looks
        else:
            previous = None
        if time.monotonic() >= deadline:
            busy = "; ".join(f"{w}: {r.busy}" for w, r in zip(ids, looks) if r.busy is not None)
            raise TimeoutError(f"workflows did not come to rest within {timeout.total_seconds():.0f} s: "
                               f"{busy or 'still changing'}")
        await asyncio.sleep(POLL)
