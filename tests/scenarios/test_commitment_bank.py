"""SPEC D1/D3: a monthly commitment's bank on the Available Credits table; what is banked at term end lapses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from billing.subscriptions import (CommitmentState, SubscriptionTerms, SubscriptionType, bill_period,
                                   commitment_credit_lines)
from starter.scenario import load_scenario
from tests.scenario_harness import closed_invoices, run_scenario

D = Decimal
SCENARIOS = Path(__file__).parents[1] / "scenarios"
TERMS = SubscriptionTerms(type=SubscriptionType.MONTHLY_COMMITMENT, term_start=date(2027, 1, 1), term_months=3,
                          commitment=D("3000.00"))


def test_overage_the_bank_cannot_cover_is_billed_on_top_of_the_commitment():
    january = bill_period(TERMS, CommitmentState(), D("600.00"), "2027-01")
    february = bill_period(TERMS, january.state, D("1900.00"), "2027-02")
    assert (february.bank_used, february.billed_usage, february.state.bank) == (D("400.00"), D("1500.00"), D("0.00"))
    no_bank = bill_period(TERMS, CommitmentState(months_billed=1), D("1900.00"), "2027-02")
    assert (no_bank.bank_used, no_bank.billed_usage) == (D("0.00"), D("1900.00"))


def test_the_bank_row_counts_everything_banked_and_lapses_after_the_term():
    state = CommitmentState()
    for period, usage in [("2027-01", "600.00"), ("2027-02", "1900.00"), ("2027-03", "700.00")]:
        state = bill_period(TERMS, state, D(usage), period).state
    commitment, bank = commitment_credit_lines(TERMS, state)
    assert (commitment.kind, commitment.amount, commitment.used, commitment.remaining) == (
        "monthly_commitment", D("3000.00"), D("3000.00"), D("0.00"))
    assert (bank.kind, bank.amount, bank.used, bank.remaining) == ("commitment_bank", D("700.00"), D("400.00"),
                                                                   D("300.00"))
    assert bank.status(date(2027, 3, 31)) == "active" and bank.status(date(2027, 4, 1)) == "expired"
    flex = TERMS.model_copy(update={"type": SubscriptionType.FLEX_COMMITMENT})
    assert commitment_credit_lines(flex, state) == []


async def test_simulated_bank_lapses_visibly_at_term_end(new_database):
    output = await run_scenario(load_scenario(str(SCENARIOS / "subscriptions" / "commitment_bank_lapses.yaml")),
                                new_database())
    cloud = [(i["period"], i["billed_usage"], i["status"]) for i in closed_invoices(output) if i["kind"] == "cloud"]
    assert cloud == [("2027-01", "1000.00", "INVOICED"), ("2027-02", "1500.00", "INVOICED"),
                     ("2027-03", "1000.00", "INVOICED"), ("2027-04", "200.00", "PAID")]
    [table] = output["credits"]
    assert table["org"] == "acme"
    assert [(line["kind"], line["amount"], line["used"], line["remaining"], line["status"])
            for line in table["lines"]] == [("monthly_commitment", "3000.00", "3000.00", "0.00", "expired"),
                                            ("commitment_bank", "700.00", "400.00", "300.00", "expired")]
