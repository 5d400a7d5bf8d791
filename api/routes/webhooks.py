"""The gateway's webhooks (SPEC I5): no API key; the Standard Webhooks signature is the authentication."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from api.context import ApiContext, context
from api.problems import PROBLEM, ApiProblem, Problem
from billing.webhooks import InvalidSignature
from services.webhooks import WebhookReceived

router = APIRouter(tags=["webhooks"])
Ctx = Annotated[ApiContext, Depends(context)]

_RESPONSES = {status: {"model": Problem, "content": {PROBLEM: {}}, "description": about}
              for status, about in ((401, "forged, malformed, or outside the 5-minute tolerance: nothing changed"),
                                    (409, "this webhook id was received before: nothing changed"))}


@router.post("/webhooks/gateway", response_model=WebhookReceived, operation_id="receiveGatewayWebhook",
             responses=_RESPONSES, openapi_extra={"security": []})
async def gateway_webhook(
        request: Request, ctx: Ctx,
        webhook_id: Annotated[str | None, Header(max_length=100, description="the message id, the same on every "
                                                                            "retry")] = None,
        webhook_timestamp: Annotated[str | None, Header(max_length=20, description="Unix seconds")] = None,
        webhook_signature: Annotated[str | None, Header(max_length=1000, description="`v1,<base64 HMAC-SHA256 of "
                                                                                    "id.timestamp.body>`")] = None,
) -> WebhookReceived:
    """The issuer's outcome of a PROCESSING India charge (E3-E6), relayed to the payment's workflow as a signal.
    Each webhook id is accepted once: a replay answers 409 and changes nothing."""
    body = await request.body()
    headers = {"webhook-id": webhook_id or "", "webhook-timestamp": webhook_timestamp or "",
               "webhook-signature": webhook_signature or ""}
    try:
        received = await ctx.billing.handle_gateway_webhook(
            body, headers, tolerance=timedelta(seconds=ctx.settings.webhook_tolerance_seconds))
    except InvalidSignature as err:
        raise ApiProblem(401, "Unauthorized", f"webhook refused: {err}", type_="/problems/webhook-signature") from None
    if received.duplicate:
        raise ApiProblem(409, "Conflict", f"webhook {received.id} was received at {received.received_at.isoformat()} "
                                          f"({received.outcome}); this delivery changed nothing",
                         type_="/problems/webhook-replayed")
    return received
