"""What each route of the webhooks and events API needs (SPEC I2, I5, I6): read by the roles x organizations test."""

from billing.permissions import Access

ROUTE_ACCESS = {
    ("POST", "/v1/webhooks/gateway"): "public",  # signed by the gateway (Standard Webhooks), no API key
    ("POST", "/v1/webhook-endpoints"): Access.CHANGE_BILLING,
    ("GET", "/v1/webhook-endpoints"): Access.CHANGE_BILLING,
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): Access.CHANGE_BILLING,
    ("GET", "/v1/event-deliveries"): Access.CHANGE_BILLING,
    ("GET", "/v1/event-deliveries/{delivery_id}"): Access.CHANGE_BILLING,
    ("POST", "/v1/event-deliveries/{delivery_id}/resend"): Access.CHANGE_BILLING,
}
