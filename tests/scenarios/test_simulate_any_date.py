"""Simulations of any period: the same scenario dated in the past and in the future bills the same, modulo dates."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from starter.scenario import load_yaml, parse_scenario
from tests.scenario_harness import SCENARIOS, run_scenario

_YEAR_OF_DATE = re.compile(r"(?<![\d.])(2\d{3})(?=-\d\d-\d\d)")
_YEAR_IN_OUTPUT = re.compile(r"(?<![\d.])(2\d{3})(?=-\d\d(?!\d)|\d\d-\d{6})")  # dates, periods, INV-202701-000001
_CARD_EXPIRY = re.compile(r"(exp: \"\d\d/)(\d\d)\"")


def _years_apart(base: int, *, past: bool) -> int:
    """A distance in whole 4-year steps (same leap years, same month lengths) to a year before or after this one."""
    today, year = date.today().year, base
    while (year >= today) if past else (year <= today):
        year += -4 if past else 4
    return year - base


def _shift_scenario(text: str, years: int) -> str:
    text = _YEAR_OF_DATE.sub(lambda m: str(int(m[1]) + years), text)
    return _CARD_EXPIRY.sub(lambda m: f'{m[1]}{(int(m[2]) + years) % 100:02d}"', text)


_SECONDS = re.compile(r"(T\d\d:\d\d):\d\dZ")


_NUMBER = re.compile(r"\b[A-Z]{3}-\d{6}-\d{6}\b")


def _unshift_output(output: dict[str, Any], years: int) -> dict[str, Any]:
    """The output with its years moved back. Instants are compared to the minute, and lists as sets: a step's
    work takes real time on the test server's clock, so what a step starts may be stamped a second later. Invoice
    numbers are compared as what they number (organization, kind, period): concurrent settlements take numbers
    in the order they commit."""
    names = {invoice["number"]: f"{invoice['org']}/{invoice['kind']}/{invoice['period']}"
             for invoice in output["invoices"] if invoice["number"]}
    text = _NUMBER.sub(lambda m: names.get(m[0], m[0]), json.dumps(output))
    text = _SECONDS.sub(r"\1Z", _YEAR_IN_OUTPUT.sub(lambda m: str(int(m[1]) - years), text))
    return {name: sorted(json.dumps(item, sort_keys=True) for item in items)
            for name, items in json.loads(text).items()}


@pytest.mark.parametrize("name", ["card_declined_retry.yaml", "subscriptions/monthly_commitment.yaml",
                                  "rbi/processing_paid.yaml", "support/support_plans.yaml"])
async def test_a_scenario_dated_last_year_and_next_year_bills_the_same_modulo_dates(name, new_database):
    text = (SCENARIOS / name).read_text()
    base = int(re.search(r"start: (\d{4})", text)[1])
    outputs = {}
    for when in ("past", "future"):
        years = _years_apart(base, past=when == "past")
        output = await run_scenario(parse_scenario(load_yaml(_shift_scenario(text, years))), new_database())
        assert output["invoices"], f"{name} dated {base + years} billed nothing"
        assert all(i["at"].startswith(str(base + years)) or i["at"] > str(base + years) for i in output["invoices"])
        outputs[when] = _unshift_output(output, years)
    assert outputs["past"] == outputs["future"]
