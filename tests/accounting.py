"""The ledger check every simulated scenario must pass: every cent of every invoice total is accounted for."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any


def assert_every_cent_accounted(output: dict[str, Any]) -> None:
    """Σ PAID payments (card, PayPal, credits) + Σ invoiced under a subscription + Σ still due = Σ invoice totals.

    Tax invoices restate their cloud invoice in the subscription's currency, so they are not counted twice.
    """
    totals: dict[str, Decimal] = defaultdict(Decimal)
    accounted: dict[str, Decimal] = defaultdict(Decimal)
    invoices = {invoice["number"]: invoice for invoice in output["invoices"]}
    for invoice in invoices.values():
        if invoice["kind"] == "tax":
            continue
        totals[invoice["org"]] += Decimal(invoice["total"])
        accounted[invoice["org"]] += Decimal(invoice["invoiced"]) + Decimal(invoice["amount_due"])
        paid = sum((_in(invoice["currency"], p) for p in output["payments"]
                    if p["invoice"] == invoice["number"] and p["status"] == "PAID"), Decimal(0))
        credits = sum((Decimal(p["amount"]) for p in output["payments"]
                       if p["invoice"] == invoice["number"] and p["method"] == "credits"), Decimal(0))
        assert credits == Decimal(invoice["credits_applied"]), invoice["number"]
        assert paid + Decimal(invoice["invoiced"]) + Decimal(invoice["amount_due"]) == Decimal(invoice["total"]), (
            f"{invoice['number']}: paid {paid} + invoiced {invoice['invoiced']} + due {invoice['amount_due']} "
            f"!= total {invoice['total']}")
        accounted[invoice["org"]] += paid
    assert dict(accounted) == dict(totals)


def _in(currency: str, payment: dict[str, Any]) -> Decimal:
    """A payment in the invoice's currency: an INR charge (SPEC E3) back through the rate it recorded."""
    amount = Decimal(payment["amount"])
    if payment["currency"] == currency:
        return amount
    return (amount / Decimal(payment["fx_rate"])).quantize(Decimal("0.01"))
