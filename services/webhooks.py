"""Inbound gateway webhooks (SPEC I5): verified, deduplicated by id, and turned into the payment workflow's signal.

The receipt row and the signal are one step: the row is inserted (its primary key is the webhook's id), the signal
sent, and only then the transaction commits. A delivery racing it waits on the row's key and then finds it; a
failed signal rolls the row back so the gateway's next delivery tries again; a replay finds the row and changes
nothing. The payment workflow also ignores a second outcome for a charge, so even a commit lost after the signal
cannot settle a payment twice."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from billing import webhooks
from billing.webhooks import InvalidSignature
from contracts.flows import payment_workflow_id
from contracts.payments import GatewayOutcome
from store.db import Database
from store.gateway import WebhookEvent, gateway_webhook_secret
from store.tables import Invoice, Payment, WebhookReceipt

SIGNAL_TIMEOUT = 30.0  # seconds the receipt's transaction waits for Temporal to take the signal


class WebhookReceived(BaseModel):
    """What became of a verified webhook: `duplicate` when its id had already been received (nothing changed)."""

    id: str
    type: str
    outcome: str
    duplicate: bool = False
    received_at: datetime


async def receive_gateway_webhook(temporal: Client, db: Database, body: bytes, headers: Mapping[str, str],
                                  now: datetime, tolerance: timedelta = webhooks.TOLERANCE) -> WebhookReceived:
    """Verify (InvalidSignature for a forged, malformed or stale one), then signal the payment's workflow once."""
    message_id = webhooks.verify(gateway_webhook_secret(), body, headers, now, tolerance)
    try:
        event = WebhookEvent.model_validate_json(body)
    except ValidationError:
        raise InvalidSignature("the signed body is not a gateway event") from None
    if event.id != message_id:
        raise InvalidSignature("webhook-id does not match the event's id")
    loop = asyncio.get_running_loop()

    def signal(number: str) -> None:
        handle = temporal.get_workflow_handle(payment_workflow_id(number))
        outcome = GatewayOutcome(charge_id=event.charge_id, succeeded=event.type == "charge.succeeded",
                                 failure_code=event.failure_code, event_id=event.id)
        asyncio.run_coroutine_threadsafe(handle.signal("gateway_outcome", outcome), loop).result(SIGNAL_TIMEOUT)

    def record() -> WebhookReceived:
        try:
            with db.session() as s:
                receipt = WebhookReceipt(id=event.id, type=event.type, received_at=now, outcome="")
                s.add(receipt)
                s.flush()  # takes the id: a concurrent delivery of it waits here until this one ends
                number = s.exec(select(Invoice.number).join(Payment, Payment.invoice_id == Invoice.id)
                                .where(Payment.gateway_charge_id == event.charge_id)).first()
                if number is None:
                    # The issuer settled before our charge activity heard back from the gateway (a timeout after
                    # charging): the payment is still NEW without the charge's id, but it has the key (M3). Its
                    # workflow keeps the outcome until the activity records the charge.
                    number = s.exec(select(Invoice.number).join(Payment, Payment.invoice_id == Invoice.id)
                                    .where(Payment.idempotency_key == event.idempotency_key)).first()
                if number is None:
                    receipt.outcome = f"ignored: no payment of ours has charge {event.charge_id}"
                else:
                    try:
                        signal(number)
                        receipt.outcome = f"signalled {payment_workflow_id(number)}: {event.type}"
                    except RPCError as err:
                        if err.status != RPCStatusCode.NOT_FOUND:
                            raise
                        receipt.outcome = f"ignored: {payment_workflow_id(number)} is no longer running"
                s.add(receipt)
                return WebhookReceived(id=receipt.id, type=receipt.type, outcome=receipt.outcome, received_at=now)
        except IntegrityError:
            with db.session() as s:
                first = s.get(WebhookReceipt, event.id)
            return WebhookReceived(id=first.id, type=first.type, outcome=first.outcome, duplicate=True,
                                   received_at=first.received_at)

    return await asyncio.to_thread(record)
