"""Access of the operations routes (SPEC J1, J2) for the roles x organizations test (tests/api/test_roles.py)."""

from billing.permissions import Access  # noqa: F401  (the values' vocabulary)

ROUTE_ACCESS = {
    ("POST", "/codec/decode"): "operator",
    ("POST", "/codec/{namespace}/decode"): "operator",
    ("POST", "/codec/encode"): "operator",
    ("POST", "/codec/{namespace}/encode"): "operator",
    # The CORS preflight carries no credentials (browsers send none).
    ("OPTIONS", "/codec/decode"): "public",
    ("OPTIONS", "/codec/encode"): "public",
    ("OPTIONS", "/codec/{namespace}/decode"): "public",
    ("OPTIONS", "/codec/{namespace}/encode"): "public",
    ("GET", "/metrics"): "operator",
}
