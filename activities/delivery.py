"""Outbound events (SPEC I6): a transactional outbox and the delivery workflow's activities.

`publish` writes one `event_deliveries` row per subscribed endpoint inside the transaction that records the state
change, so the event exists exactly when the change does. The activity that made the change then starts each
pending delivery's workflow (`@dispatches_events`, after its transaction committed, on every path out of it): a
worker that dies in between leaves the activity unfinished, Temporal runs it again, and the retry starts what the
first run could not. Starting is by business-key workflow ID, so nothing is delivered twice by a retried activity.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Connection, insert, or_, select as core_select
from sqlmodel import Session, func, select
from temporalio import activity
from temporalio.client import Client

from activities._context import activity_log_context
from billing import webhooks
from billing.logging import get_logger
from billing.money import round_money
from contracts.delivery import (AttemptRequest, AttemptResult, DeliveryInput, EventType, GiveUpRequest,
                                start_delivery_workflow)
from store.db import Database
from contracts.invoices import InvoiceSummary
from store.tables import (DeliveryAttempt, EventDelivery, Invoice, OrgStatus, Payment, PaymentStatus,
                          WebhookEndpoint)

log = get_logger("billing.events")
DISPATCH_TIMEOUT = 30.0  # seconds an activity waits for Temporal to take its deliveries' starts
HTTP_TIMEOUT = 10.0  # seconds an endpoint has to answer one attempt
_ENDPOINTS = WebhookEndpoint.__table__
_DELIVERIES = EventDelivery.__table__

PAYMENT_EVENTS = {PaymentStatus.PAID: EventType.PAYMENT_SUCCEEDED, PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
                  PaymentStatus.FAILED_AUTHENTICATION: EventType.PAYMENT_FAILED,
                  PaymentStatus.REFUNDED: EventType.PAYMENT_REFUNDED}


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # money travels as a string, never a float
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _money(amount: Decimal, currency: str) -> str:
    return str(round_money(Decimal(amount), currency))  # "20.00", never "2E+1" nor a float


def event_id_for(event_type: str, subject: str, at: datetime) -> str:
    """The event's id follows from the state change it reports, so recording the change twice cannot make two."""
    return "evt_" + hashlib.sha256(f"{event_type}|{subject}|{at.isoformat()}".encode()).hexdigest()[:24]


def publish(conn: Connection, *, event_type: EventType, org_id: str | None, subject: str, data: dict[str, Any],
            at: datetime) -> list[str]:
    """The outbox: in the caller's transaction, one pending delivery of the event per endpoint subscribed to it
    (the organization's, and operators' endpoints for every organization). Returns the delivery ids written."""
    endpoints = conn.execute(core_select(_ENDPOINTS.c.id, _ENDPOINTS.c.event_types).where(
        _ENDPOINTS.c.disabled_at.is_(None),
        or_(_ENDPOINTS.c.org_id == org_id, _ENDPOINTS.c.org_id.is_(None)))).all()
    wanted = [row.id for row in endpoints
              if row.event_types.strip() == "*" or event_type.value in row.event_types.split(",")]
    if not wanted:
        return []
    event_id = event_id_for(event_type.value, subject, at)
    done = set(conn.execute(core_select(_DELIVERIES.c.endpoint_id).where(_DELIVERIES.c.event_id == event_id)).scalars())
    payload = json.dumps({"id": event_id, "type": event_type.value, "timestamp": at.isoformat(), "organization": org_id,
                          "data": data}, default=_json_default, separators=(",", ":"))
    rows = [dict(id="dlv_" + secrets.token_hex(12), event_id=event_id, event_type=event_type.value, org_id=org_id,
                 endpoint_id=endpoint_id, payload=payload, status="pending", created_at=at)
            for endpoint_id in wanted if endpoint_id not in done]
    if rows:
        conn.execute(insert(_DELIVERIES), rows)
    return [row["id"] for row in rows]


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    return {"invoice": invoice.number, "kind": invoice.kind, "period": invoice.period, "status": invoice.status,
            "currency": invoice.currency, "total": _money(invoice.total, invoice.currency),
            "amount_due": _money(invoice.amount_due, invoice.currency),
            "billing_mode": invoice.billing_mode}


def publish_invoice(s: Session, invoice: Invoice, event_type: EventType, at: datetime) -> None:
    if invoice.kind == "tax":
        return  # a tax invoice restates its cloud invoice: one event, about the cloud invoice
    publish(s.connection(), event_type=event_type, org_id=invoice.org_id, subject=f"invoice:{invoice.id}",
            data=invoice_data(invoice), at=at)


def publish_payment(s: Session, payment: Payment, at: datetime, failure_code: str | None = None) -> None:
    """payment.succeeded / payment.failed / payment.refunded for the status the payment just moved to."""
    event_type = PAYMENT_EVENTS.get(PaymentStatus(payment.status))
    if event_type is None or payment.method == "credits":
        return
    invoice = s.get(Invoice, payment.invoice_id)
    publish(s.connection(), event_type=event_type, org_id=payment.org_id, subject=f"payment:{payment.id}",
            data={"invoice": invoice.number if invoice else None, "attempt": payment.attempt,
                  "status": payment.status, "method": payment.method, "amount": _money(payment.amount, payment.currency),
                  "currency": payment.currency, "failure_code": failure_code or payment.failure_code},
            at=at)


def publish_finalized(conn: Connection, summary: InvoiceSummary, at: datetime) -> None:
    """invoice.finalized: the month-end closed the cloud invoice (status FREE, PREPAID, INVOICED or CLOSED, D8)."""
    publish(conn, event_type=EventType.INVOICE_FINALIZED, org_id=summary.org_id, subject=f"invoice:{summary.invoice_id}",
            data={"invoice": summary.number, "kind": summary.kind, "period": summary.period, "status": summary.status,
                  "currency": summary.currency, "total": _money(summary.total, summary.currency),
                  "amount_due": _money(summary.amount_due, summary.currency),
                  "billing_mode": summary.billing_mode}, at=at)


ORG_EVENTS = {OrgStatus.SUSPENDED: EventType.ORGANIZATION_SUSPENDED, OrgStatus.LOCKED: EventType.ORGANIZATION_LOCKED,
              OrgStatus.ACTIVE: EventType.ORGANIZATION_REACTIVATED}


def publish_org_status(s: Session, org_id: str, status: OrgStatus, invoices: list[str], at: datetime) -> None:
    """D9: the organization moved to `status` (callers publish only a change)."""
    publish(s.connection(), event_type=ORG_EVENTS[OrgStatus(status)], org_id=org_id, subject=f"org:{org_id}:{status}",
            data={"organization": org_id, "status": status, "overdue_invoices": invoices}, at=at)


class EventPublisher:
    """Starts the delivery workflows of what an activity published, once its transaction has committed."""

    def __init__(self, db: Database, client: Client, task_queue: str) -> None:
        self.db, self.client, self.task_queue = db, client, task_queue
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()  # the worker's
        except RuntimeError:
            self.loop = None

    def pending_since(self, org_id: str | None, since: datetime) -> list[DeliveryInput]:
        with self.db.session() as s:
            query = select(EventDelivery).where(EventDelivery.status == "pending", EventDelivery.created_at >= since)
            query = query.where(EventDelivery.org_id == org_id) if org_id else query
            return [DeliveryInput(delivery_id=d.id, event_id=d.event_id, endpoint_id=d.endpoint_id,
                                  event_type=d.event_type, org_id=d.org_id) for d in s.exec(query)]

    async def start(self, deliveries: list[DeliveryInput]) -> int:
        started = await asyncio.gather(*(start_delivery_workflow(self.client, self.task_queue, d) for d in deliveries))
        return sum(started)

    def dispatch_since(self, org_id: str | None, since: datetime) -> None:
        """From an activity's thread: start every pending delivery of `org_id` recorded at or after `since` (what
        this activity published, on its first run or an earlier one that died before starting them)."""
        deliveries = self.pending_since(org_id, since)
        if not deliveries:
            return
        if self.loop is None:
            started = asyncio.run(self.start(deliveries))
        else:
            started = asyncio.run_coroutine_threadsafe(self.start(deliveries), self.loop).result(DISPATCH_TIMEOUT)
        log.info("event deliveries started", org_id=org_id, started=started, pending=len(deliveries))


def dispatches_events(org_of: Callable[[Any, Any], str | None]):
    """Decorates an activity method (under @activity.defn) whose transaction may publish events: once the method has
    returned, by whichever path, the deliveries it published are started. `org_of(self, request)` names the
    organization; `request.at` is the moment its state change is stamped with."""
    def wrap(method):
        if inspect.iscoroutinefunction(method):
            async def run_async(self, request):
                result = await method(self, request)
                if getattr(self, "events", None) is not None:
                    await asyncio.to_thread(self.events.dispatch_since, org_of(self, request), request.at)
                return result
            return functools.update_wrapper(run_async, method)

        def run(self, request):
            result = method(self, request)
            if getattr(self, "events", None) is not None:
                self.events.dispatch_since(org_of(self, request), request.at)
            return result
        return functools.update_wrapper(run, method)
    return wrap


class DeliveryActivities:
    def __init__(self, db: Database, http: httpx.Client | None = None) -> None:
        self.db = db
        self.http = http or httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)

    @activity.defn(name="deliver_event")
    def deliver_event(self, request: AttemptRequest) -> AttemptResult:
        """One signed POST (Standard Webhooks, the endpoint's own secret), recorded with what the endpoint answered."""
        with self.db.session() as s:
            delivery = s.get(EventDelivery, request.delivery_id)
            endpoint = s.get(WebhookEndpoint, delivery.endpoint_id)
            if delivery.status == "delivered":
                return AttemptResult(attempt=self._attempts(s, delivery.id), delivered=True)
            url, secret, event_id, payload = endpoint.url, endpoint.secret, delivery.event_id, delivery.payload
            gone = endpoint.disabled_at is not None
        with activity_log_context(org_id=delivery.org_id, event=event_id, event_type=delivery.event_type) as logger:
            status_code, error, started = None, None, time.monotonic()
            if gone:
                error = "endpoint deleted"
            else:
                body = payload.encode()
                headers = {"content-type": "application/json", "user-agent": "billing-engine-webhooks/1",
                           **webhooks.sign(secret, event_id, request.at, body)}
                try:
                    status_code = self.http.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError as err:
                    error = f"{type(err).__name__}: {err}"[:500]
            duration_ms = int((time.monotonic() - started) * 1000)
            delivered = status_code is not None and 200 <= status_code < 300
            with self.db.session() as s:
                attempt = self._attempts(s, request.delivery_id) + 1
                s.add(DeliveryAttempt(delivery_id=request.delivery_id, attempt=attempt, at=request.at,
                                      status_code=status_code, error=error, duration_ms=duration_ms))
                if delivered:
                    delivery = s.get(EventDelivery, request.delivery_id)
                    delivery.status, delivery.delivered_at = "delivered", request.at
                    s.add(delivery)
            logger.info("event delivery attempt", attempt=attempt, status_code=status_code, error=error,
                        delivered=delivered)
            return AttemptResult(attempt=attempt, delivered=delivered, status_code=status_code, error=error,
                                 endpoint_gone=gone)

    @staticmethod
    def _attempts(s: Session, delivery_id: str) -> int:
        return s.exec(select(func.count()).select_from(DeliveryAttempt)
                      .where(DeliveryAttempt.delivery_id == delivery_id)).one()

    @activity.defn(name="give_up_delivery")
    def give_up(self, request: GiveUpRequest) -> None:
        with self.db.session() as s:
            delivery = s.get(EventDelivery, request.delivery_id)
            if delivery.status == "pending":
                delivery.status = "failed"
                s.add(delivery)
        log.warning("event delivery failed for good", delivery=request.delivery_id, reason=request.reason)
