"""SPEC A3 billing e-mail routing, and the e-mail texts that link to the invoices."""

from __future__ import annotations

import pytest

from billing.emails import billing_recipients, render

OWNERS = ["owner@acme.test"]
ADMINS = ["billing@acme.test", "owner@acme.test"]


@pytest.mark.parametrize("billing_email, only, expected", [
    (None, False, ["owner@acme.test", "billing@acme.test"]),          # no billing e-mail: owners and admins
    (None, True, ["owner@acme.test", "billing@acme.test"]),           # the flag means nothing without an address
    ("ap@acme.test", False, ["ap@acme.test", "owner@acme.test", "billing@acme.test"]),
    ("ap@acme.test", True, ["ap@acme.test"]),                          # only the billing e-mail
])
def test_billing_recipients_follow_spec_a3(billing_email, only, expected):
    assert billing_recipients(OWNERS, ADMINS, billing_email, only) == expected


def test_payment_failed_links_to_the_invoices_and_retry():
    content = render("payment_failed", "acme", {"invoice": "INV-202701-000001", "amount": "59.52",
                                                "currency": "USD", "failure_code": "card_declined"})
    assert "INV-202701-000001" in content.subject
    assert "/orgs/acme/billing/invoices" in content.body and "#retry" in content.body
    assert "59.52 USD" in content.body and "card_declined" in content.body


def test_authentication_failure_links_to_authentication():
    content = render("payment_failed", "acme", {"invoice": "INV-1", "amount": "5", "currency": "EUR",
                                                "failure_code": "authentication_required"})
    assert "payment-method" in content.body and "5.00 EUR" in content.body


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        render("spam", "acme", {})
