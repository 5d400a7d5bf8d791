"""What each route needs of a key (SPEC I2): (method, path template) -> an Access, "operator" (operator keys only),
"b2" (support cases: billing.permissions.allowed with the key's caller_for_key) or "any" (every key of the
organization). The roles x organizations test reads it; another organization's key is 404 on every row."""

from __future__ import annotations

from billing.permissions import Access

ROUTE_ACCESS: dict[tuple[str, str], Access | str] = {
    ("GET", "/v1/organization"): Access.READ_BILLING,
    ("GET", "/v1/organization/members"): Access.READ_BILLING,
    ("POST", "/v1/organization/members"): Access.MANAGE_MEMBERS,
    ("DELETE", "/v1/organization/members/{member_id}"): Access.MANAGE_MEMBERS,
    ("GET", "/v1/organization/billing-profile"): Access.READ_BILLING,
    ("PUT", "/v1/organization/billing-profile"): Access.CHANGE_BILLING,
    ("GET", "/v1/organization/billing-profile/changes"): Access.READ_BILLING,
    ("GET", "/v1/organization/billing-contact"): Access.READ_BILLING,
    ("PUT", "/v1/organization/billing-contact"): Access.CHANGE_BILLING,
    ("GET", "/v1/organization/billing-contact/changes"): Access.READ_BILLING,
    ("GET", "/v1/payment-method"): Access.READ_BILLING,
    ("POST", "/v1/payment-method"): Access.CHANGE_BILLING,
    ("POST", "/v1/payment-method/reauthenticate"): Access.CHANGE_BILLING,
    ("GET", "/v1/subscriptions"): Access.READ_BILLING,
    ("POST", "/v1/subscriptions"): "operator",
    ("GET", "/v1/activation"): Access.READ_BILLING,
    ("POST", "/v1/activation/apply"): Access.CHANGE_BILLING,
    ("POST", "/v1/activation/reissue"): "operator",
    ("GET", "/v1/credits"): Access.READ_BILLING,
    ("GET", "/v1/support-plan"): Access.READ_BILLING,
    ("POST", "/v1/support-plan"): Access.CHANGE_BILLING,
    ("GET", "/v1/support-cases"): "b2",
    ("POST", "/v1/support-cases"): "b2",
    ("POST", "/v1/consulting/checkouts"): Access.CHANGE_BILLING,
    ("GET", "/v1/consulting/checkouts/{checkout_id}"): Access.READ_BILLING,
    ("POST", "/v1/consulting/checkouts/{checkout_id}/level"): Access.CHANGE_BILLING,
    ("POST", "/v1/consulting/checkouts/{checkout_id}/address"): Access.CHANGE_BILLING,
    ("POST", "/v1/consulting/checkouts/{checkout_id}/payment-method"): Access.CHANGE_BILLING,
    ("POST", "/v1/consulting/checkouts/{checkout_id}/review"): Access.CHANGE_BILLING,
    ("POST", "/v1/consulting/checkouts/{checkout_id}/confirm"): Access.CHANGE_BILLING,
}


# The body a support case needs (B2 is checked against its project, after validation).
ROUTE_REQUESTS = {
    ("POST", "/v1/support-cases"): lambda db: {"json": {"project": "analytics", "subject": "Cluster slow",
                                                        "description": "Queries take 10 s since Monday."}},
}
