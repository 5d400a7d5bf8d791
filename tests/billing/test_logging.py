"""JSON logs never carry a card number or CVC, whoever writes them (SPEC A6)."""

import io
import json
import logging

import pytest

from billing.logging import configure_logging, get_logger, mask_card_numbers, redact_card_data


@pytest.fixture
def captured():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    yield stream
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_and_stdlib_logs_are_json_without_card_data(captured):
    log = get_logger("billing.test")
    log.info(
        "adding card 4242 4242 4242 4242 for org 42",
        card={"number": "4000003560000123", "CVC": "737", "brand": "visa"},
        attempts=[{"cvv": "9191"}, {"note": "retry with 4000002760003184"}],
        invoice="1234567890123",
    )
    logging.getLogger("temporalio.workflow").info(
        "charging card %s", "4000000000009995", extra={"temporal_workflow": {"workflow_id": "charge-1"}, "cvc2": "555"}
    )
    try:
        raise RuntimeError("gateway rejected 5555-5555-5555-4444")
    except RuntimeError:
        logging.getLogger("temporalio.activity").exception("charge failed")

    records = lines(captured)
    assert len(records) == 3
    # Timestamps are left out of the search: their digits could contain a 3-digit CVC by chance.
    output = json.dumps([{k: v for k, v in r.items() if k != "timestamp"} for r in records])
    for secret in ("4242 4242 4242 4242", "4000003560000123", "4000002760003184", "4000000000009995",
                   "5555-5555-5555-4444", "737", "9191", "555"):
        assert secret not in output

    structlog_line, workflow_line, activity_line = records
    assert structlog_line["event"] == "adding card ****4242 for org 42"
    assert structlog_line["card"] == {"number": "[REDACTED]", "CVC": "[REDACTED]", "brand": "visa"}
    assert structlog_line["attempts"] == [{"cvv": "[REDACTED]"}, {"note": "retry with ****3184"}]
    assert structlog_line["invoice"] == "1234567890123"
    assert structlog_line["level"] == "info" and structlog_line["logger"] == "billing.test"
    assert structlog_line["timestamp"].endswith("Z")

    assert workflow_line["event"] == "charging card ****9995"
    assert workflow_line["logger"] == "temporalio.workflow"
    assert workflow_line["temporal_workflow"] == {"workflow_id": "charge-1"}
    assert workflow_line["cvc2"] == "[REDACTED]"
    assert "****4444" in activity_line["exception"] and activity_line["level"] == "error"


def test_configure_logging_twice_keeps_one_handler(captured):
    configure_logging("INFO", stream=captured)
    configure_logging("INFO", stream=captured)
    logging.getLogger("other.library").warning("once")
    assert [r["event"] for r in lines(captured)] == ["once"]


def test_level_filters_debug(captured):
    configure_logging("INFO", stream=captured)
    get_logger("billing.test").debug("hidden")
    logging.getLogger("other.library").debug("hidden too")
    assert captured.getvalue() == ""


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4242424242424242", "****4242"),
        ("card 4242 4242 4242 4242.", "card ****4242."),
        ("amex 3782-822463-10005 ok", "amex ****0005 ok"),
        ("pan 4242424242424242 cvc 123", "pan ****4242 cvc 123"),
        ("invoice 1234567890123", "invoice 1234567890123"),
        ("order 4242424242424241", "order 4242424242424241"),
        ("short 424242424242", "short 424242424242"),
        ("total 1234.56 USD", "total 1234.56 USD"),
    ],
)
def test_mask_card_numbers(text, masked):
    assert mask_card_numbers(text) == masked


def test_redact_card_data_does_not_touch_the_callers_objects():
    card = {"number": "4242424242424242", "exp": "12/30"}
    event = {"event": "add", "card": card}
    assert redact_card_data(None, "info", event)["card"] == {"number": "[REDACTED]", "exp": "12/30"}
    assert card["number"] == "4242424242424242"


def test_redaction_walks_nested_values_and_leaves_other_values_as_they_are():
    event = {"event": "charge", "amount": 12, "rate": 0.5, "ok": True, "none": None,
             "cards": ({"Card-Number": 4242424242424242, "CVV": 123, "last4": "4242"}, "paid 4242 4242 4242 4242"),
             "tags": {"visa"}, "pan": ["anything"], 7: "4000002760003184"}
    assert redact_card_data(None, "info", event) == {
        "event": "charge", "amount": 12, "rate": 0.5, "ok": True, "none": None,
        "cards": [{"Card-Number": "[REDACTED]", "CVV": "[REDACTED]", "last4": "4242"}, "paid ****4242"],
        "tags": ["visa"], "pan": "[REDACTED]", 7: "****3184"}
