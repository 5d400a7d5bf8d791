"""The ledger check every simulated scenario must pass: every cent of every invoice total is accounted for."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any


def assert_every_cent_accounted(output: dict[str, Any]) -> None:
    """Σ PAID payments (card, PayPal, wire, ACH, credits) + Σ invoiced under a subscription and not yet received
    + Σ still due + Σ forgiven = Σ invoice totals.

    - A wire or ACH payment is a PAID payment; a partial one leaves the rest in `invoiced` (INVOICED invoice) or
      `amount_due` (card invoice), so the identity holds after every transfer (SPEC D10).
    - Forgiven: what an operator forgave on a FORGIVEN invoice (its `forgiven`); nothing else may forgive.
    - A refund (a REFUNDED payment row that is not itself a reversed charge) returns money the PAID row already
      counted: the charge was made and paid the invoice, the refund is a separate outflow, so it stays out of the
      identity; instead the refunds of an invoice never exceed what its card and PayPal charges collected.
      (An RBI charge reversed before it settled, SPEC E6, was never PAID: its row is REFUNDED and its amount is due.)

    Tax invoices restate their cloud invoice in the subscription's currency, so they are not counted twice.
    """
    totals: dict[str, Decimal] = defaultdict(Decimal)
    accounted: dict[str, Decimal] = defaultdict(Decimal)
    invoices = {invoice["number"]: invoice for invoice in output["invoices"]}
    for invoice in invoices.values():
        if invoice["kind"] == "tax":
            continue
        total = Decimal(invoice["total"])
        totals[invoice["org"]] += total
        mine = [p for p in output["payments"] if p["invoice"] == invoice["number"]]
        paid = sum((_in(invoice["currency"], p) for p in mine if p["status"] == "PAID"), Decimal(0))
        credits = sum((Decimal(p["amount"]) for p in mine if p["method"] == "credits"), Decimal(0))
        assert credits == Decimal(invoice["credits_applied"]), invoice["number"]
        open_ = Decimal(invoice["invoiced"]) + Decimal(invoice["amount_due"])
        forgiven = Decimal(invoice["forgiven"])
        assert (forgiven > 0) == (invoice["status"] == "FORGIVEN"), f"{invoice['number']}: forgiven {forgiven}"
        if invoice["status"] == "FORGIVEN":
            assert open_ == 0, f"{invoice['number']}: FORGIVEN with {open_} still open"
        assert paid + open_ + forgiven == total, (
            f"{invoice['number']}: paid {paid} + invoiced {invoice['invoiced']} + due {invoice['amount_due']} "
            f"+ forgiven {forgiven} != total {invoice['total']}")
        if invoice["status"] == "PAID":
            charged = sum((_in(invoice["currency"], p) for p in mine
                           if p["status"] == "PAID" and p["method"] in ("card", "paypal")), Decimal(0))
            refunded = sum((_in(invoice["currency"], p) for p in mine if p["status"] == "REFUNDED"), Decimal(0))
            assert refunded <= charged, f"{invoice['number']}: refunded {refunded} > charged {charged}"
        accounted[invoice["org"]] += paid + open_ + forgiven
    assert dict(accounted) == dict(totals)


def _in(currency: str, payment: dict[str, Any]) -> Decimal:
    """A payment in the invoice's currency: an INR charge (SPEC E3) back through the rate it recorded."""
    amount = Decimal(payment["amount"])
    if payment["currency"] == currency:
        return amount
    return (amount / Decimal(payment["fx_rate"])).quantize(Decimal("0.01"))
