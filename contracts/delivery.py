"""Outbound events (SPEC I6): the event types, the delivery workflow's input and result, its activities' contract,
and the one function that starts a delivery."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from contracts.flows import DELIVERY_WORKFLOW, ORG_ID, delivery_workflow_id


class EventType(StrEnum):
    """What a backend can subscribe to (I6)."""

    INVOICE_FINALIZED = "invoice.finalized"  # the month-end closed the cloud invoice (its amounts are final)
    INVOICE_PAID = "invoice.paid"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    ORGANIZATION_SUSPENDED = "organization.suspended"  # D9: day 31 overdue
    ORGANIZATION_LOCKED = "organization.locked"  # D9: day 61 overdue
    ORGANIZATION_REACTIVATED = "organization.reactivated"  # everything paid again


class DeliveryInput(BaseModel):
    """Input of DeliveryWorkflow: which delivery, and how long to keep trying (I6: up to 3 days, backing off)."""

    delivery_id: str
    event_id: str
    endpoint_id: str
    event_type: str
    org_id: str | None = None
    give_up_after: timedelta = timedelta(days=3)
    first_backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=6)


class DeliveryResult(BaseModel):
    delivery_id: str
    status: Literal["delivered", "failed"]
    attempts: int


class AttemptRequest(BaseModel):
    delivery_id: str
    at: datetime  # the moment of the attempt (business clock): the signature's timestamp


class AttemptResult(BaseModel):
    attempt: int  # 1, 2, … across every run of this delivery (a resend continues the count)
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    endpoint_gone: bool = False  # deleted since: nobody to deliver to


class GiveUpRequest(BaseModel):
    delivery_id: str
    reason: str
    at: datetime


class DeliveryActivities:
    """What the delivery workflow calls (activities/delivery.py implements it, registered under the same names)."""

    @activity.defn(name="deliver_event")
    def deliver_event(self, request: AttemptRequest) -> AttemptResult:
        """One signed POST to the endpoint, recorded as a delivery attempt (and the delivery as delivered on 2xx)."""

    @activity.defn(name="give_up_delivery")
    def give_up(self, request: GiveUpRequest) -> None:
        """The delivery failed for good: recorded so the backend's operator can resend it."""


async def start_delivery_workflow(client: Client, task_queue: str, request: DeliveryInput,
                                  resend: bool = False) -> bool:
    """Start the delivery by its business key (H1): False when one was started before (a retried activity publishes
    nothing twice). A resend is a new run of the same ID once the previous one has ended; while one runs, it raises
    WorkflowAlreadyStartedError."""
    attributes = [SearchAttributePair(ORG_ID, request.org_id)] if request.org_id else []
    try:
        await client.start_workflow(
            DELIVERY_WORKFLOW, request, id=delivery_workflow_id(request.event_id, request.endpoint_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE if resend else WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(attributes),
            static_summary=f"Delivery of {request.event_type} {request.event_id} to endpoint {request.endpoint_id}")
    except WorkflowAlreadyStartedError:
        if resend:
            raise
        return False
    return True
