"""Outbound events (SPEC I6): webhook endpoints, the deliveries with every attempt, and resending one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.auth import OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from contracts.delivery import EventType
from services import events
from services.events import CreatedEndpoint, Delivery, Endpoint, EndpointIn

router = APIRouter(tags=["events"])
Ctx = Annotated[ApiContext, Depends(context)]


@router.post("/webhook-endpoints", response_model=CreatedEndpoint, status_code=201, operation_id="createWebhookEndpoint",
             dependencies=[needs(Access.CHANGE_BILLING)])
async def create_endpoint(spec: EndpointIn, org: OrgId, ctx: Ctx) -> CreatedEndpoint:
    """Register where the organization's events go. The answer holds the endpoint's `whsec_` secret, shown only
    this once: every delivery is signed with it (Standard Webhooks headers `webhook-id`, `webhook-timestamp`,
    `webhook-signature`)."""
    return await asyncio.to_thread(events.create_endpoint, ctx.db, org, spec, await ctx.now())


@router.get("/webhook-endpoints", response_model=list[Endpoint], operation_id="listWebhookEndpoints",
            dependencies=[needs(Access.CHANGE_BILLING)])
async def list_endpoints(org: OrgId, ctx: Ctx) -> list[Endpoint]:
    return await asyncio.to_thread(events.list_endpoints, ctx.db, org)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204, operation_id="deleteWebhookEndpoint",
               dependencies=[needs(Access.CHANGE_BILLING)], response_class=Response)
async def delete_endpoint(endpoint_id: str, org: OrgId, ctx: Ctx) -> Response:
    """No more events go there; its deliveries stay listed."""
    await asyncio.to_thread(events.delete_endpoint, ctx.db, org, endpoint_id, await ctx.now())
    return Response(status_code=204)


@router.get("/event-deliveries", response_model=list[Delivery], operation_id="listEventDeliveries",
            dependencies=[needs(Access.CHANGE_BILLING)])
async def list_deliveries(
        org: OrgId, ctx: Ctx,
        status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
        event_type: Annotated[EventType | None, Query()] = None,
        endpoint_id: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[Delivery]:
    """Newest first, each with every attempt (when, the HTTP status or the error, how long it took)."""
    return await asyncio.to_thread(events.list_deliveries, ctx.db, org, status, event_type.value if event_type else None,
                                   endpoint_id, limit)


@router.get("/event-deliveries/{delivery_id}", response_model=Delivery, operation_id="getEventDelivery",
            dependencies=[needs(Access.CHANGE_BILLING)])
async def get_delivery(delivery_id: str, org: OrgId, ctx: Ctx) -> Delivery:
    return await asyncio.to_thread(events.get_delivery, ctx.db, org, delivery_id)


@router.post("/event-deliveries/{delivery_id}/resend", response_model=Delivery, status_code=202,
             operation_id="resendEventDelivery", dependencies=[needs(Access.CHANGE_BILLING)])
async def resend(delivery_id: str, org: OrgId, ctx: Ctx) -> Delivery:
    """Deliver the event again (same event id), as a new run of the delivery's workflow; 409 while one runs."""
    billing = ctx.billing
    await events.resend(billing.temporal, billing.task_queue, ctx.db, org, delivery_id)
    return await asyncio.to_thread(events.get_delivery, ctx.db, org, delivery_id)
