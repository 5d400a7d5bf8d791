"""SPEC E2, G2: a month above the USD 1,400 RBI mandate fails off-session with mandate_limit_exceeded and an e-mail
that says why (with PAY NOW); the customer pays it on-session, which the mandate does not limit."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from store.db import Database
from store.tables import EmailMessage, Payment, SandboxCharge
from starter.scenario import load_scenario
from tests.scenario_harness import closed_invoices, run_scenario

SCENARIO = Path(__file__).parents[1] / "scenarios/payments/india_above_mandate_pay_now.yaml"


async def test_charge_above_the_mandate_fails_with_a_reason_and_pay_now_pays_it_on_session(new_database):
    url = new_database()
    output = await run_scenario(load_scenario(str(SCENARIO)), database_url=url)
    [invoice] = closed_invoices(output)
    assert (invoice["status"], invoice["total"], invoice["amount_due"]) == ("PAID", "2000.00", "0.00")
    assert [(p["status"], p["failure_code"], p["amount"], p["currency"], p["fx_rate"], p["attempt"], p["at"])
            for p in output["payments"]] == [
        ("FAILED", "mandate_limit_exceeded", "166400.00", "INR", "83.20", 1, "2025-02-01T00:00:00Z"),
        ("PAID", None, "170000.00", "INR", "85.00", 2, "2025-02-03T09:00:00Z")]  # E3: the rate at PAY NOW
    assert [e["kind"] for e in output["emails"]] == ["mandate_registered", "payment_failed", "payment_succeeded"]
    db = Database(url)
    try:
        with db.session() as s:
            failed = s.exec(select(EmailMessage).where(EmailMessage.kind == "payment_failed")).one()
            keys = [p.idempotency_key for p in s.exec(select(Payment).order_by(Payment.attempt))]
            charged = s.exec(select(SandboxCharge).where(SandboxCharge.kind == "charge",
                                                         SandboxCharge.outcome == "succeeded",
                                                         SandboxCharge.idempotency_key.not_like("verify:%"))).all()
    finally:
        db.dispose()
    assert "USD 1,400 monthly limit" in failed.body and f"{invoice['number']}#pay-now" in failed.body
    assert keys == [f"{invoice['number']}:1", f"{invoice['number']}:2"]  # one key per attempt (M3)
    assert [(c.amount, c.currency, c.mandate_id) for c in charged] == [(170000, "INR", None)]  # not on the mandate
