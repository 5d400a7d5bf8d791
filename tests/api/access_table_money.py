"""Who may call the money-side routes (SPEC I2, D10): invoices and their actions, usage, the operator endpoints.
Read by tests/api/test_roles.py with every tests/api/access_table*.py module.

Values: an Access member (the key's organization, or an operator key naming it with ?org=; another organization's
is 404 whatever the role), "operator" (operator endpoints that act on no one organization: 403 for every other
key), "b2" (support cases, SPEC B2), "public" (no key: e.g. signed webhooks)."""

from __future__ import annotations

from billing.permissions import Access

ROUTE_ACCESS = {
    ("GET", "/v1/invoices"): Access.READ_BILLING,
    ("GET", "/v1/invoices/{number}"): Access.READ_BILLING,
    ("GET", "/v1/invoices/{number}/payments"): Access.READ_BILLING,
    ("POST", "/v1/invoices/{number}/retry"): Access.CHANGE_BILLING,  # F3: the customer's RETRY
    ("POST", "/v1/invoices/{number}/pay-now"): Access.CHANGE_BILLING,  # G2/E2: PAY NOW
    ("POST", "/v1/invoices/{number}/authorize"): Access.CHANGE_BILLING,  # E4: the customer authorized
    # D10: a received wire/ACH payment is confirmed by the bank statement, a refund gives money back and a
    # forgiveness writes a debt off: the service's staff do these, not the customer's keys.
    ("POST", "/v1/invoices/{number}/payments"): Access.OPERATE,
    ("POST", "/v1/invoices/{number}/forgive"): Access.OPERATE,
    ("POST", "/v1/invoices/{number}/refund"): Access.OPERATE,
    ("POST", "/v1/usage"): Access.CHANGE_BILLING,  # I3: Organization Owner, Billing Admin (the backend), operator
    ("POST", "/v1/operator/month-end"): "operator",
    ("POST", "/v1/operator/settlements"): "operator",
    ("GET", "/healthz"): "public",  # liveness for the compose service; answers nothing about anyone
}
