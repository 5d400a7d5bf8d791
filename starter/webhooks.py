"""Webhooks under `make run`: the sandbox gateway delivers its India outcomes over HTTP to our endpoint (SPEC I5),
and a local receiver, registered for the demo organization, logs the events we send (I6) once it verified them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone

import httpx
import uvicorn
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing import webhooks
from billing.logging import get_logger
from services import events
from services.client import BillingClient, wall_clock
from store.gateway import SandboxGateway
from store.tables import WebhookEndpoint

log = get_logger("starter.webhooks")
GATEWAY_PATH = "/v1/webhooks/gateway"
RECEIVER_PATH = "/events"
POLL = timedelta(seconds=1)  # a new PROCESSING charge may appear at any moment
FIRST_RETRY, MAX_RETRY = timedelta(seconds=1), timedelta(minutes=5)


class GatewayWebhookSender:
    """The sandbox gateway's sender: sleeps until `gateway.next_webhook_at()`, POSTs what is due, and sends a
    webhook again (same id) until our endpoint answers 2xx, or 409 for one it had already received."""

    def __init__(self, gateway: SandboxGateway, url: str, clock: Callable[[], Awaitable[datetime]] = wall_clock,
                 http: httpx.AsyncClient | None = None) -> None:
        self.gateway, self.url, self.clock = gateway, url, clock
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.retry = FIRST_RETRY

    async def deliver_due(self) -> tuple[int, int]:
        """Send every due webhook once: (how many our endpoint took, how many were due). The others stay due."""
        taken = 0
        due = await asyncio.to_thread(self.gateway.due_webhooks, await self.clock())
        for webhook in due:
            try:
                answer = await self.http.post(self.url, content=webhook.body,
                                              headers={"content-type": "application/json", **webhook.headers})
            except httpx.HTTPError as err:
                log.warning("gateway webhook not delivered", charge=webhook.charge_id, error=str(err))
                continue
            if answer.is_success or answer.status_code == 409:
                await asyncio.to_thread(self.gateway.webhook_delivered, webhook.charge_id)
                taken += 1
                log.info("gateway webhook delivered", charge=webhook.charge_id, status=answer.status_code)
            else:
                log.warning("gateway webhook refused", charge=webhook.charge_id, status=answer.status_code,
                            detail=answer.text[:300])
        return taken, len(due)

    async def run(self) -> None:
        while True:
            due = await asyncio.to_thread(self.gateway.next_webhook_at)
            now = await self.clock()
            if due is not None and due <= now:
                taken, sent = await self.deliver_due()
                if taken < sent:
                    await asyncio.sleep(self.retry.total_seconds())  # our endpoint is down or refusing: back off
                    self.retry = min(self.retry * 2, MAX_RETRY)
                else:
                    self.retry = FIRST_RETRY
                continue
            wait = POLL if due is None else min(POLL, due - now)
            await asyncio.sleep(max(wait.total_seconds(), 0.01))

    async def close(self) -> None:
        await self.http.aclose()


def receiver_app(secret: Callable[[], str | None]) -> Starlette:
    """The demo backend: verifies each event's signature with its endpoint's secret, logs it, answers 204."""
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        key = secret()
        try:
            if key is None:
                raise webhooks.InvalidSignature("no endpoint registered yet")
            webhooks.verify(key, body, request.headers, datetime.now(timezone.utc))
        except webhooks.InvalidSignature as err:
            log.warning("demo receiver refused an event", error=str(err))
            return JSONResponse({"error": str(err)}, status_code=401)
        log.info("demo receiver got an event", webhook_id=request.headers.get("webhook-id"), body=body.decode())
        return Response(status_code=204)
    return Starlette(routes=[Route(RECEIVER_PATH, receive, methods=["POST"])])


def ensure_endpoint(billing: BillingClient, org_id: str, url: str) -> str:
    """The organization's endpoint at `url` (registered once, kept across restarts); its secret."""
    with billing.db.session() as s:
        found = s.exec(select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id, WebhookEndpoint.url == url,
                                                     WebhookEndpoint.disabled_at.is_(None))).first()
        if found is not None:
            return found.secret
    return events.create_endpoint(billing.db, org_id, events.EndpointIn(url=url), datetime.now(timezone.utc)).secret


async def start_demo_webhooks(stack: AsyncExitStack, billing: BillingClient, api_url: str, host: str, port: int,
                              org_id: str) -> dict[asyncio.Future, str]:
    """Start the gateway's sender and the demo receiver (registered for `org_id`); the long-running parts."""
    secret: list[str] = []
    server = uvicorn.Server(uvicorn.Config(receiver_app(lambda: secret[0] if secret else None), host=host, port=port,
                                           log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # the runner owns SIGINT/SIGTERM
    serving = asyncio.create_task(server.serve())

    async def stop_receiver() -> None:
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)

    stack.push_async_callback(stop_receiver)
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the demo webhook receiver stopped while starting")
        await asyncio.sleep(0.05)
    url = f"http://{host}:{port}{RECEIVER_PATH}"
    secret.append(await asyncio.to_thread(ensure_endpoint, billing, org_id, url))
    sender = GatewayWebhookSender(billing.gateway, api_url + GATEWAY_PATH)
    sending = asyncio.create_task(sender.run())
    stack.push_async_callback(sender.close)
    stack.callback(sending.cancel)
    log.info("webhooks running", gateway_to=api_url + GATEWAY_PATH, events_to=url, organization=org_id)
    return {serving: "the demo webhook receiver", sending: "the gateway's webhook sender"}
