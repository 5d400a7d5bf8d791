"""Webhooks under `make run`: a local receiver, registered for the demo organization, logs the events we send (I6)
once it verified them. The sandbox gateway service delivers its India outcomes to our endpoint itself (SPEC I5;
starter/gateway_service.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime, timezone

import uvicorn
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing import webhooks
from billing.logging import get_logger
from services import events
from services.client import BillingClient
from store.tables import WebhookEndpoint

log = get_logger("starter.webhooks")
GATEWAY_PATH = "/v1/webhooks/gateway"
RECEIVER_PATH = "/events"


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


async def start_demo_webhooks(stack: AsyncExitStack, billing: BillingClient, host: str, port: int,
                              org_id: str) -> dict[asyncio.Future, str]:
    """Start the demo receiver (registered for `org_id`); the long-running part."""
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
    log.info("demo webhook receiver running", events_to=url, organization=org_id)
    return {serving: "the demo webhook receiver"}
