"""Webhooks in (SPEC I5) and the webhook-endpoint resources (I6) through the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlmodel import select

from api.app import create_app
from billing import webhooks
from billing.permissions import ApiRole
from services.client import BillingClient
from starter.processes import free_port
from starter.gateway_service import GatewayWebhookSender
from starter.webhooks import GATEWAY_PATH
from store.gateway import WebhookEvent, gateway_webhook_secret, sign_webhook
from store.tables import WebhookEndpoint, WebhookReceipt
from tests.api.conftest import NOW, auth
from tests.workflows.test_rbi import India
from worker import build_worker


def receipts(db) -> list[WebhookReceipt]:
    with db.session() as s:
        return list(s.exec(select(WebhookReceipt)))


def gateway_event(charge_id: str = "ch_x", event_id: str = "evt_x") -> WebhookEvent:
    return WebhookEvent(id=event_id, type="charge.succeeded", charge_id=charge_id, idempotency_key="k", at=NOW)


async def test_forged_stale_and_unsigned_gateway_webhooks_are_refused_and_change_nothing(api, two_orgs):
    genuine = sign_webhook(gateway_event(), NOW)
    wrong_secret = webhooks.sign(webhooks.new_secret(), "evt_x", NOW, genuine.body)
    stale = sign_webhook(gateway_event(), NOW - timedelta(minutes=6))
    future = sign_webhook(gateway_event(), NOW + timedelta(minutes=6))
    tampered = genuine.body.replace(b"charge.succeeded", b"charge.failed")
    cases = [(genuine.body, wrong_secret, "no webhook-signature matches"),
             (tampered, genuine.headers, "no webhook-signature matches"),
             (stale.body, stale.headers, "too old"), (future.body, future.headers, "in the future"),
             (genuine.body, {}, "missing webhook-id"),
             (genuine.body, {**genuine.headers, "webhook-signature": "v1,not base64!"}, "no webhook-signature"),
             (genuine.body, {**genuine.headers, "webhook-timestamp": "yesterday"}, "not a Unix time")]
    for body, headers, why in cases:
        answer = await api.post(GATEWAY_PATH, content=body, headers=headers)
        assert answer.status_code == 401, why
        assert answer.headers["content-type"] == "application/problem+json"
        assert why in answer.json()["detail"]
    assert receipts(two_orgs) == []


async def test_the_gateway_webhook_needs_no_api_key_but_a_signature_for_another_id_is_refused(api, two_orgs):
    signed = sign_webhook(gateway_event(event_id="evt_a"), NOW)
    other = webhooks.sign(gateway_webhook_secret(), "evt_b", NOW, signed.body)  # genuine signature, wrong id
    answer = await api.post(GATEWAY_PATH, content=signed.body, headers=other)
    assert answer.status_code == 401 and "does not match the event's id" in answer.json()["detail"]
    assert receipts(two_orgs) == []


async def test_an_owner_registers_an_endpoint_sees_its_secret_once_and_deletes_it(api, keys, two_orgs):
    owner = auth(keys[ApiRole.ORGANIZATION_OWNER])
    created = await api.post("/v1/webhook-endpoints", headers=owner,
                             json={"url": "https://backend.example/hooks", "event_types": ["invoice.paid"]})
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["invoice.paid"]
    listed = (await api.get("/v1/webhook-endpoints", headers=owner)).json()
    assert listed == [{k: v for k, v in body.items() if k != "secret"}]
    other = await api.delete(f"/v1/webhook-endpoints/{body['id']}", headers=auth(keys.other_org_owner))
    assert other.status_code == 404
    assert (await api.delete(f"/v1/webhook-endpoints/{body['id']}", headers=owner)).status_code == 204
    assert (await api.get("/v1/webhook-endpoints", headers=owner)).json() == []
    with two_orgs.session() as s:
        assert s.get(WebhookEndpoint, body["id"]).disabled_at == NOW  # kept for its deliveries' history


async def test_endpoints_are_for_owners_and_billing_admins_and_validated(api, keys, two_orgs):
    spec = {"url": "https://backend.example/hooks"}
    read_only = await api.post("/v1/webhook-endpoints", headers=auth(keys[ApiRole.ORGANIZATION_READ_ONLY]), json=spec)
    assert read_only.status_code == 403
    admin = await api.post("/v1/webhook-endpoints", headers=auth(keys[ApiRole.BILLING_ADMIN]), json=spec)
    assert admin.status_code == 201 and admin.json()["event_types"] == ["*"]
    bad = await api.post("/v1/webhook-endpoints", headers=auth(keys[ApiRole.BILLING_ADMIN]),
                         json={"url": "ftp://x", "event_types": ["invoice.eaten"]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.url", "body.event_types.0"}
    owner = auth(keys[ApiRole.ORGANIZATION_OWNER])
    assert (await api.get("/v1/event-deliveries", headers=owner)).json() == []
    missing = await api.post("/v1/event-deliveries/dlv_nope/resend", headers=owner)
    assert missing.status_code == 404


class Server:
    """The real app on uvicorn, on a free port."""

    def __init__(self, billing: BillingClient) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(billing), host="127.0.0.1", port=self.port,
                                                    log_config=None, access_log=False, lifespan="off"))
        self.url = f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "Server":
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self.task


async def history_length(client, workflow_id: str) -> int:
    return len((await client.get_workflow_handle(workflow_id).fetch_history()).events)


async def test_an_india_payment_is_paid_by_a_signed_webhook_over_http_and_forgeries_replays_change_nothing(
        time_skipping_env, db, smtp, task_queue):
    india = India(time_skipping_env, db, smtp, task_queue)
    env = time_skipping_env
    async with build_worker(env.client, db, india.gateway, smtp, task_queue=task_queue), Server(india.billing) as api:
        with env.auto_time_skipping_disabled():
            await india.setup("100.00")
            await env.sleep(timedelta(days=3, minutes=1))  # the issuer's notice period (E4)
            [webhook] = india.gateway.due_webhooks(await env.get_current_time())
            events = await history_length(env.client, india.handle.id)
            async with httpx.AsyncClient(base_url=api.url) as http:
                forged = await http.post(GATEWAY_PATH, content=webhook.body.replace(b"succeeded", b"failed"),
                                         headers=webhook.headers)
                stale = sign_webhook(WebhookEvent.model_validate_json(webhook.body),
                                     await env.get_current_time() - timedelta(minutes=10))
                late = await http.post(GATEWAY_PATH, content=stale.body, headers=stale.headers)
            assert (forged.status_code, late.status_code) == (401, 401)
            assert [p.status for p in india.payments()] == ["PROCESSING"] and receipts(db) == []
            assert await history_length(env.client, india.handle.id) == events

            sender = GatewayWebhookSender(india.gateway, api.url + GATEWAY_PATH, clock=env.get_current_time)
            assert await sender.deliver_due() == (1, 1)  # what `make run` does: POST over HTTP, signed
            state = await india.idle()
            assert state.status == "PAID" and [p.status for p in india.payments()] == ["PAID"]
            [receipt] = receipts(db)
            assert receipt.id == webhook.headers["webhook-id"] and receipt.outcome.startswith("signalled payment-")
            assert india.gateway.next_webhook_at() is None  # acknowledged: the gateway stops sending it
            events = await history_length(env.client, india.handle.id)

            replay = sign_webhook(WebhookEvent.model_validate_json(webhook.body), await env.get_current_time())
            async with httpx.AsyncClient(base_url=api.url) as http:
                again = await http.post(GATEWAY_PATH, content=replay.body, headers=replay.headers)
            assert again.status_code == 409 and again.json()["type"] == "/problems/webhook-replayed"
            assert len(receipts(db)) == 1 and [p.status for p in india.payments()] == ["PAID"]
            assert await history_length(env.client, india.handle.id) == events
            await sender.close()


@pytest.mark.parametrize("answer", [500])
async def test_the_sender_keeps_a_webhook_our_endpoint_did_not_take(time_skipping_env, db, smtp, task_queue, answer):
    india = India(time_skipping_env, db, smtp, task_queue)
    env = time_skipping_env
    async with build_worker(env.client, db, india.gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            await india.setup("100.00")
            await env.sleep(timedelta(days=3, minutes=1))
            transport = httpx.MockTransport(lambda request: httpx.Response(answer))
            sender = GatewayWebhookSender(india.gateway, "http://gateway.test" + GATEWAY_PATH,
                                          clock=env.get_current_time, http=httpx.AsyncClient(transport=transport))
            assert await sender.deliver_due() == (0, 1)
            assert india.gateway.next_webhook_at() is not None  # still due: sent again, same id, next round
            assert [p.status for p in india.payments()] == ["PROCESSING"]
            await sender.close()
