"""SPEC A6: after a run, the card numbers and CVCs appear nowhere: database (SQLite's files, PostgreSQL's rows),
logs, workflow histories."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from starter.scenario import load_scenario
from tests.leaks import assert_no_secrets, card_secrets, cvcs, database_text
from tests.scenario_harness import run_scenario
from billing.logging import configure_logging

SCENARIO = Path(__file__).parents[1] / "scenarios" / "card_declined_retry.yaml"
SECRETS = ["4000000000000002", "5555555555554444", "4000 0000 0000 0002"]
CVCS = ['"cvc": "123"', '"cvc": "321"', "cvc=123", "cvc=321"]


async def test_card_numbers_never_reach_database_logs_or_histories(new_database):
    logs = io.StringIO()
    configure_logging("DEBUG", stream=logs)
    url = new_database()
    histories = {}
    try:
        logging.getLogger("billing.test").info("card 4000000000000002 in a log line is masked")
        output = await run_scenario(load_scenario(str(SCENARIO)), url, history_sink=histories)
    finally:
        configure_logging("WARNING")
    assert [p["status"] for p in output["payments"]][-1] == "PAID"  # the run really charged the cards

    raw_database = database_text(url)
    assert b"****0002" in raw_database or b"0002" in raw_database  # the cards' last 4 are kept: the search sees rows
    history_json = "".join(history.to_json() for history in histories.values())
    log_text = logs.getvalue()
    assert "charge attempted" in log_text and len(histories) == 4  # the places searched are not empty
    assert "****0002" in log_text
    for secret in SECRETS:
        assert secret.encode() not in raw_database, secret
        assert secret not in log_text, secret
        assert secret not in history_json, secret
    for cvc in CVCS:
        assert cvc not in log_text and cvc not in history_json


async def test_the_history_check_finds_a_card_number_hidden_inside_a_payload(new_database):
    """A payload is base64 in a history's JSON: the check decodes every payload, so a card number put into a
    workflow's input (or an update's argument, a memo, a header) is found."""
    histories = {}
    scenario = load_scenario(str(SCENARIO))
    await run_scenario(scenario, new_database(), history_sink=histories)
    assert assert_no_secrets(histories.values(), card_secrets(scenario), cvcs(scenario)) > 20  # payloads searched
    history = next(h for h in histories.values() if h.workflow_id.startswith("payment-"))
    assert "4000000000000002" not in history.to_json()
    started = history.events[0].workflow_execution_started_event_attributes
    started.input.payloads.append(pydantic_data_converter.payload_converter.to_payload(
        {"card": {"number": "4000000000000002", "cvc": "123"}}))
    assert "4000000000000002" not in history.to_json()  # what a text search of the JSON would have missed
    with pytest.raises(AssertionError, match="card number"):
        assert_no_secrets([history], card_secrets(scenario), cvcs(scenario))
    update = history.events[0].workflow_execution_started_event_attributes
    update.input.payloads.pop()
    update.input.payloads.append(pydantic_data_converter.payload_converter.to_payload("ABCDE-FGHJK-LMNPQ-RSTUV"))
    with pytest.raises(AssertionError, match="activation code"):
        assert_no_secrets([history], set())
