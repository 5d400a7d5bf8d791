"""Outbound events (SPEC I6) for the API: webhook endpoints (the secret shown once), deliveries with every attempt,
and resending a delivery as a new run of its workflow."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, Field, field_validator
from sqlmodel import select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from billing import webhooks
from contracts.delivery import DeliveryInput, EventType, start_delivery_workflow
from contracts.flows import delivery_workflow_id
from services.client import BillingError
from services.invoices import NotFound
from store.db import Database
from store.tables import DeliveryAttempt, EventDelivery, WebhookEndpoint

MAX_ENDPOINTS = 20  # per organization


class EndpointIn(BaseModel):
    url: AnyHttpUrl = Field(description="where events are POSTed (http or https)")
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EventType),
                                                description="the events wanted; omitted: every event")

    @field_validator("url")
    @classmethod
    def _length(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > 2000:
            raise ValueError("at most 2000 characters")
        return url


class Endpoint(BaseModel):
    id: str
    url: str
    event_types: list[str]  # ["*"]: every event
    created_at: datetime


class CreatedEndpoint(Endpoint):
    secret: str = Field(description="`whsec_…`: verify our signatures with it (Standard Webhooks). Shown only now.")


class Attempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class Delivery(BaseModel):
    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    status: str  # pending | delivered | failed
    created_at: datetime
    delivered_at: datetime | None
    workflow_id: str
    payload: str = Field(description="the JSON body, exactly as signed and sent")
    attempts: list[Attempt]


def _endpoint(row: WebhookEndpoint) -> Endpoint:
    return Endpoint(id=row.id, url=row.url, event_types=row.event_types.split(","), created_at=row.created_at)


def create_endpoint(db: Database, org_id: str | None, spec: EndpointIn, at: datetime) -> CreatedEndpoint:
    secret = webhooks.new_secret()
    types = ",".join(t.value for t in spec.event_types) if spec.event_types else "*"
    with db.session() as s:
        count = len(s.exec(select(WebhookEndpoint.id).where(WebhookEndpoint.org_id == org_id,
                                                            WebhookEndpoint.disabled_at.is_(None))).all())
        if count >= MAX_ENDPOINTS:
            raise BillingError(f"at most {MAX_ENDPOINTS} webhook endpoints per organization")
        row = WebhookEndpoint(id="we_" + secrets.token_hex(8), org_id=org_id, url=str(spec.url), secret=secret,
                              event_types=types, created_at=at)
        s.add(row)
        return CreatedEndpoint(**_endpoint(row).model_dump(), secret=secret)


def list_endpoints(db: Database, org_id: str | None) -> list[Endpoint]:
    with db.session() as s:
        rows = s.exec(select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id,
                                                    WebhookEndpoint.disabled_at.is_(None))
                      .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)).all()
        return [_endpoint(row) for row in rows]


def delete_endpoint(db: Database, org_id: str | None, endpoint_id: str, at: datetime) -> None:
    """Disabled, not erased: its deliveries' history stays readable; pending ones stop at their next attempt."""
    with db.session() as s:
        row = s.get(WebhookEndpoint, endpoint_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no webhook endpoint {endpoint_id!r}")
        if row.disabled_at is not None:
            return  # deleted already: a repeated DELETE changes nothing and succeeds (idempotent)
        row.disabled_at = at
        s.add(row)


def _delivery(s, row: EventDelivery) -> Delivery:
    attempts = s.exec(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == row.id)
                      .order_by(DeliveryAttempt.attempt)).all()
    return Delivery(id=row.id, event_id=row.event_id, event_type=row.event_type, endpoint_id=row.endpoint_id,
                    status=row.status, created_at=row.created_at, delivered_at=row.delivered_at,
                    workflow_id=delivery_workflow_id(row.event_id, row.endpoint_id), payload=row.payload,
                    attempts=[Attempt(attempt=a.attempt, at=a.at, status_code=a.status_code, error=a.error,
                                      duration_ms=a.duration_ms) for a in attempts])


def list_deliveries(db: Database, org_id: str | None, status: str | None = None, event_type: str | None = None,
                    endpoint_id: str | None = None, limit: int = 50) -> list[Delivery]:
    """Newest first, each with every attempt."""
    with db.session() as s:
        query = select(EventDelivery).where(EventDelivery.org_id == org_id)
        if status is not None:
            query = query.where(EventDelivery.status == status)
        if event_type is not None:
            query = query.where(EventDelivery.event_type == event_type)
        if endpoint_id is not None:
            query = query.where(EventDelivery.endpoint_id == endpoint_id)
        rows = s.exec(query.order_by(EventDelivery.created_at.desc(), EventDelivery.id.desc()).limit(limit)).all()
        return [_delivery(s, row) for row in rows]


def get_delivery(db: Database, org_id: str | None, delivery_id: str) -> Delivery:
    with db.session() as s:
        row = s.get(EventDelivery, delivery_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no event delivery {delivery_id!r}")
        return _delivery(s, row)


def _reopen(db: Database, org_id: str | None, delivery_id: str) -> DeliveryInput:
    with db.session() as s:
        row = s.get(EventDelivery, delivery_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no event delivery {delivery_id!r}")
        endpoint = s.get(WebhookEndpoint, row.endpoint_id)
        if endpoint.disabled_at is not None:
            raise BillingError(f"endpoint {endpoint.id} was deleted: nothing to resend to")
        if row.status == "pending":
            raise BillingError(f"delivery {delivery_id} is still being attempted")
        row.status, row.delivered_at = "pending", None
        s.add(row)
        return DeliveryInput(delivery_id=row.id, event_id=row.event_id, endpoint_id=row.endpoint_id,
                             event_type=row.event_type, org_id=row.org_id)


async def resend(temporal: Client, task_queue: str, db: Database, org_id: str | None, delivery_id: str) -> str:
    """A new run of the delivery's workflow (same event id, so the receiver can tell it is the same event)."""
    request = await asyncio.to_thread(_reopen, db, org_id, delivery_id)
    try:
        await start_delivery_workflow(temporal, task_queue, request, resend=True)
    except WorkflowAlreadyStartedError:
        raise BillingError(f"delivery {delivery_id} is still being attempted") from None
    return delivery_workflow_id(request.event_id, request.endpoint_id)
