"""Outbound events (SPEC I6) on the time-skipping server: a delivery retries with backoff until a 2xx, gives up
after 3 days recording the failure, records every attempt, and state changes publish their events."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import select

from activities.delivery import publish
from billing import webhooks
from billing.webhooks import secret_from_text
from contracts.delivery import DeliveryInput, DeliveryResult, EventType, start_delivery_workflow
from contracts.flows import delivery_workflow_id
from services import events
from services.client import BillingClient
from starter.idle import wait_until_at_rest
from store.gateway import SandboxGateway
from store.tables import DeliveryAttempt, EventDelivery, Invoice
from tests.factories import AT, card, closed_invoice, org_with_method
from tests.receiver import Receiver
from worker import build_worker

import pytest


def endpoint(db, url: str, types: list[EventType] | None = None) -> events.CreatedEndpoint:
    return events.create_endpoint(db, "acme", events.EndpointIn(url=url, event_types=types), AT)


def one_event(db, at) -> DeliveryInput:
    with db.session() as s:
        [delivery_id] = publish(s.connection(), event_type=EventType.INVOICE_PAID, org_id="acme", subject="invoice:1",
                                data={"invoice": "INV-1"}, at=at)
        row = s.get(EventDelivery, delivery_id)
        return DeliveryInput(delivery_id=row.id, event_id=row.event_id, endpoint_id=row.endpoint_id,
                             event_type=row.event_type, org_id="acme")


def attempts(db, delivery_id: str) -> list[DeliveryAttempt]:
    with db.session() as s:
        return list(s.exec(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                           .order_by(DeliveryAttempt.attempt)))


def delivery(db, delivery_id: str) -> EventDelivery:
    with db.session() as s:
        return s.get(EventDelivery, delivery_id)


async def finished(env, workflow_id: str, within: timedelta):
    """Skip `within` of time, then the workflow's result."""
    handle = env.client.get_workflow_handle(workflow_id)
    with env.auto_time_skipping_disabled():
        await env.sleep(within)
        await wait_until_at_rest(env.client, [workflow_id])
        return DeliveryResult.model_validate(await handle.result())


@pytest.fixture
def acme(db):
    org_with_method(db, SandboxGateway(db), None)
    return db


async def test_a_delivery_retries_with_backoff_until_the_endpoint_answers_2xx(time_skipping_env, acme, smtp,
                                                                             task_queue):
    env, db = time_skipping_env, acme
    with Receiver([500, 503, 204]) as receiver:
        created = endpoint(db, receiver.url)
        request = one_event(db, await env.get_current_time())
        async with build_worker(env.client, db, SandboxGateway(db), smtp, task_queue=task_queue):
            assert await start_delivery_workflow(env.client, task_queue, request)
            assert not await start_delivery_workflow(env.client, task_queue, request)  # by business key: once
            result = await finished(env, delivery_workflow_id(request.event_id, request.endpoint_id), timedelta(hours=1))
    assert (result.status, result.attempts) == ("delivered", 3)
    rows = attempts(db, request.delivery_id)
    assert [(a.attempt, a.status_code) for a in rows] == [(1, 500), (2, 503), (3, 204)]
    assert rows[1].at - rows[0].at >= timedelta(seconds=30) and rows[2].at - rows[1].at >= timedelta(seconds=60)
    assert delivery(db, request.delivery_id).status == "delivered"
    # Signed with the endpoint's own secret, the same webhook-id on every attempt (the receiver deduplicates).
    assert {h["webhook-id"] for h, _ in receiver.received} == {request.event_id}
    for (headers, body), row in zip(receiver.received, rows):
        assert webhooks.verify(created.secret, body, headers, row.at) == request.event_id
        assert json.loads(body)["type"] == "invoice.paid"


async def test_a_delivery_gives_up_after_3_days_and_records_the_failure(time_skipping_env, acme, smtp, task_queue):
    env, db = time_skipping_env, acme
    with Receiver([500]) as receiver:
        endpoint(db, receiver.url)
        request = one_event(db, await env.get_current_time())
        started = await env.get_current_time()
        async with build_worker(env.client, db, SandboxGateway(db), smtp, task_queue=task_queue):
            await start_delivery_workflow(env.client, task_queue, request)
            result = await finished(env, delivery_workflow_id(request.event_id, request.endpoint_id),
                                    timedelta(days=3, hours=1))
    assert result.status == "failed"
    rows = attempts(db, request.delivery_id)
    assert len(rows) == result.attempts and 10 <= len(rows) <= 30
    assert all(a.status_code == 500 for a in rows)
    # The last attempt is on the deadline (to the second: each attempt's activity takes a few milliseconds), then none.
    assert abs(rows[-1].at - rows[0].at - timedelta(days=3)) < timedelta(seconds=1)
    assert abs(rows[0].at - started) < timedelta(seconds=1)
    gaps = [timedelta(seconds=round((b.at - a.at).total_seconds())) for a, b in zip(rows, rows[1:])]
    assert gaps[:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(gaps) == timedelta(hours=6)  # the backoff is capped
    assert delivery(db, request.delivery_id).status == "failed"


async def test_a_resend_is_a_new_run_that_continues_the_attempts(time_skipping_env, acme, smtp, task_queue):
    env, db = time_skipping_env, acme
    with Receiver([500]) as receiver:
        endpoint(db, receiver.url)
        request = one_event(db, await env.get_current_time())
        billing = BillingClient(env.client, db, SandboxGateway(db), clock=env.get_current_time, task_queue=task_queue)
        async with build_worker(env.client, db, SandboxGateway(db), smtp, task_queue=task_queue):
            await start_delivery_workflow(env.client, task_queue, request)
            workflow_id = delivery_workflow_id(request.event_id, request.endpoint_id)
            with pytest.raises(Exception, match="still being attempted"):
                await events.resend(env.client, task_queue, db, "acme", request.delivery_id)
            first = await finished(env, workflow_id, timedelta(days=3, hours=1))
            receiver.answers = [200]
            assert await events.resend(billing.temporal, task_queue, db, "acme", request.delivery_id) == workflow_id
            second = await finished(env, workflow_id, timedelta(minutes=1))
    assert (first.status, second.status, second.attempts) == ("failed", "delivered", 1)
    rows = attempts(db, request.delivery_id)
    assert [a.attempt for a in rows] == list(range(1, first.attempts + 2)) and rows[-1].status_code == 200


async def test_a_paid_invoice_publishes_payment_succeeded_and_invoice_paid_once(time_skipping_env, acme, smtp,
                                                                              task_queue):
    env, db = time_skipping_env, acme
    gateway = SandboxGateway(db)
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    await env.sleep(AT - await env.get_current_time())
    with Receiver([204], now=None) as receiver:
        endpoint(db, receiver.url, [EventType.PAYMENT_SUCCEEDED, EventType.INVOICE_PAID])
        async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
            await billing.update_payment_method("acme", card())
            invoice = closed_invoice(db, total="20.00")
            handle = await billing.charge_invoice(invoice.number)
            assert (await handle.result()).status == "PAID"
            with db.session() as s:
                rows = list(s.exec(select(EventDelivery).order_by(EventDelivery.event_type)))
            for row in rows:
                await finished(env, delivery_workflow_id(row.event_id, row.endpoint_id), timedelta(minutes=1))
    assert [r.event_type for r in rows] == ["invoice.paid", "payment.succeeded"]
    assert all(delivery(db, r.id).status == "delivered" for r in rows)
    bodies = sorted(json.loads(body)["type"] for _, body in receiver.received)
    assert bodies == ["invoice.paid", "payment.succeeded"]
    paid = next(json.loads(b) for _, b in receiver.received if json.loads(b)["type"] == "invoice.paid")
    with db.session() as s:
        stored = s.get(Invoice, invoice.id)
    assert paid["data"] == {"invoice": invoice.number, "kind": "cloud", "period": "2027-01", "status": "PAID",
                            "currency": "USD", "total": "20.00", "amount_due": "0.00", "billing_mode": stored.billing_mode}


def test_secret_from_text_keeps_a_whsec_secret_and_encodes_other_text():
    assert secret_from_text("whsec_abc") == "whsec_abc"
    assert secret_from_text("plain").startswith("whsec_")
