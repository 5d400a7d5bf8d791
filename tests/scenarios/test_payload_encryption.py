"""SPEC J1: personal data (e-mail addresses, names, addresses, tax IDs) is in no workflow history in clear; the
payload codec decrypts it for those who hold the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

from contracts.codec import ENCODING
from tests.leaks import decoded_texts
from tests.scenario_harness import run_scenario

HERE = Path(__file__).parent
# Each scenario with the personal data it types in.
SCENARIOS = {
    "billing_profile_edit.yaml": ["owner@acme.test", "Ada Lovelace", "1 Hauptstr.", "DE136695976"],
    "support/flex_consulting.yaml": ["owner@london.test", "ap@dublin.test", "billing@dublin.test", "1 High St",
                                     "1 Main St", "D02 X285", "IE6388047V", "Ada Lovelace"],
}
# Payloads the codec never sees, by design: search attributes (the server indexes them: business keys and statuses
# only, H2), headers (the business clock's offset, contracts/clock.py) and the SDK's own bookkeeping in markers
# (a local activity's sequence numbers, a patch's ID; a local activity's result in its marker is encrypted).
CLEAR_BY_DESIGN = ("search_attributes", "header", "marker_recorded_event_attributes.details[data]",
                   "marker_recorded_event_attributes.details[patch-data]")


def located_payloads(message: Message, path: str = "") -> list[tuple[str, Payload]]:
    """Every Payload of an event with where it sits (e.g. `activity_task_scheduled_event_attributes.input`)."""
    if isinstance(message, Payload):
        return [(path, message)]
    found = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            found += located_payloads(value, f"{path}.{field.name}")
            continue
        items = value.items() if hasattr(value, "items") else enumerate(value)
        for key, item in items:
            if isinstance(item, Message):
                found += located_payloads(item, f"{path}.{field.name}[{key}]")
    return found


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_raw_histories_hold_no_personal_data(scenario, new_database):
    personal = SCENARIOS[scenario]
    histories: dict = {}
    await run_scenario(HERE / scenario, database_url=new_database(), history_sink=histories)
    assert histories
    raw_payloads = 0
    for history in histories.values():
        for event in history.events:
            raw = event.SerializeToString()
            for value in personal:
                assert value.encode() not in raw, f"{history.workflow_id}: {value!r} in clear in a history"
            for path, payload in located_payloads(event):
                if any(part in path for part in CLEAR_BY_DESIGN):
                    continue
                raw_payloads += 1
                assert payload.metadata.get("encoding") == ENCODING, (
                    f"{history.workflow_id}: the payload at {path} is not encrypted")
    assert raw_payloads > 20
    # The control: decrypted, the same histories do carry personal data, so the search above could find it.
    decrypted = "\n".join(text for history in histories.values() for text in decoded_texts(history))
    assert any(value in decrypted for value in personal)  # e.g. an e-mail's recipients
