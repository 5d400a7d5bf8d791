"""Replay: recorded histories must replay cleanly against today's workflow code (no non-determinism)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from contracts.codec import data_converter
from temporalio.worker import Replayer

from contracts.flows import ID_PREFIXES
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))

# The SDK has no public accessor for a class's handlers; _Definition is what the worker itself reads.
DEFINITIONS = {definition.name: definition for definition in map(workflow._Definition.must_from_class, WORKFLOWS)}
UPDATE_EVENTS = (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)


def without_retired_updates(history: WorkflowHistory) -> WorkflowHistory:
    """The history without the events of updates the workflow no longer defines.

    Old runs were driven by a test-only update that only waited and returned the state: it issued no command and
    changed nothing, so its handler was removed without a patch. Replay would fail on its events (no handler), and a
    history without them is the history those runs would have had without it. A retired update that did issue
    commands still fails here: its activities' and timers' events stay, and no code issues them any more."""
    started = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    defined = DEFINITIONS[started].updates
    if None in defined:  # a dynamic update handler takes every name
        return history
    retired = {_update_id(e) for e in history.events
               if e.event_type in UPDATE_EVENTS and _update_name(e) is not None and _update_name(e) not in defined}
    if not retired:
        return history
    events = [e for e in history.events if not (e.event_type in UPDATE_EVENTS and _update_id(e) in retired)]
    # Event IDs run without gaps: number the rest again, and every reference to an event with them.
    renumbered = {e.event_id: i for i, e in enumerate(events, start=1)}
    copies = []
    for event in events:
        copy = HistoryEvent()
        copy.CopyFrom(event)
        _renumber(copy, renumbered)
        copies.append(copy)
    return WorkflowHistory(history.workflow_id, copies)


def _update_id(event: HistoryEvent) -> str:
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
        return event.workflow_execution_update_admitted_event_attributes.request.meta.update_id
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        return event.workflow_execution_update_accepted_event_attributes.protocol_instance_id
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
        return event.workflow_execution_update_rejected_event_attributes.protocol_instance_id
    return event.workflow_execution_update_completed_event_attributes.meta.update_id


def _update_name(event: HistoryEvent) -> str | None:
    """The update's name; a completed event does not carry it (its accepted event does)."""
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
        return event.workflow_execution_update_admitted_event_attributes.request.input.name
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        return event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
        return event.workflow_execution_update_rejected_event_attributes.rejected_request.input.name
    return None


def _renumber(message: Message, renumbered: dict[int, int]) -> None:
    """Rewrite every `*event_id` field (event_id, scheduled_event_id, workflow_task_completed_event_id, ...)."""
    for field, value in message.ListFields():
        if field.message_type is not None:
            for item in (value if field.is_repeated else [value]):
                if isinstance(item, Message):
                    _renumber(item, renumbered)
        elif field.name.endswith("event_id") and not field.is_repeated and value in renumbered:
            setattr(message, field.name, renumbered[value])


def test_histories_are_recorded_for_every_registered_workflow():
    """The list comes from the worker's registrations: a new workflow type without recorded histories fails."""
    recorded = {path.name.split("--")[1] for path in HISTORIES}
    registered = {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS}
    assert registered <= set(ID_PREFIXES), f"no ID prefix for {registered - set(ID_PREFIXES)} (contracts/flows.py)"
    assert {ID_PREFIXES[name] for name in registered} <= recorded, "record histories: python -m tests.record_histories"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_cleanly(path):
    history = without_retired_updates(WorkflowHistory.from_json(path.stem, path.read_text()))
    result = await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
