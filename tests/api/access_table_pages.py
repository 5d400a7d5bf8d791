"""What each route the pages' branch adds to the HTTP API needs of an API key's role (SPEC I2), read by the roles x
organizations test. The pages under /orgs/{org}/… take a member's session, not a key, and are not listed."""

from billing.permissions import Access

ROUTE_ACCESS = {
    ("GET", "/v1/invoices/{number}/pdf"): Access.READ_BILLING,
    ("GET", "/v1/invoices/{number}/csv"): Access.READ_BILLING,
    ("GET", "/v1/invoices/{number}/usage.csv"): Access.READ_BILLING,
}
