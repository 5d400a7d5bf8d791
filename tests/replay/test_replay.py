"""Replay: recorded histories must replay cleanly against today's workflow code (no non-determinism)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from contracts.codec import data_converter
from temporalio.worker import Replayer

from contracts.flows import ID_PREFIXES
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))

# Updates of a test hook the workflows no longer have. Until the simulator and the tests waited for workflows by
# reading their histories (starter/idle.py), they called a `wait_idle` update on five workflows; histories recorded
# then hold its accepted/completed events. Its handler only waited and returned the state (no command, no change
# of state), so a history without its events is the history those runs would have had without the hook.
REMOVED_UPDATES = {"wait_idle"}


def without_removed_updates(history: WorkflowHistory) -> WorkflowHistory:
    removed = {e.workflow_execution_update_accepted_event_attributes.protocol_instance_id for e in history.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
               and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               in REMOVED_UPDATES}
    if not removed:
        return history
    events = [e for e in history.events
              if not (e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                      and e.workflow_execution_update_accepted_event_attributes.protocol_instance_id in removed)
              and not (e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
                       and e.workflow_execution_update_completed_event_attributes.meta.update_id in removed)]
    # Event IDs run without gaps: number the rest again, and every reference to an event with them.
    renumbered = {e.event_id: i for i, e in enumerate(events, start=1)}
    copies = []
    for event in events:
        copy = HistoryEvent()
        copy.CopyFrom(event)
        _renumber(copy, renumbered)
        copies.append(copy)
    return WorkflowHistory(history.workflow_id, copies)


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
    history = without_removed_updates(WorkflowHistory.from_json(path.stem, path.read_text()))
    result = await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
