"""The sandbox gateway as its own HTTP service (`billing gateway serve`), as payment providers ship mock servers.

Its own process and ledger database (BILLING_GATEWAY_DATABASE_URL), card tokens, idempotency keys honoured by the
service itself (SPEC M3: the same key answers the first result, a key reused for another request answers 409), the
test cards of SCENARIOS.md, India outcomes POSTed as signed webhooks to BILLING_GATEWAY_WEBHOOK_URL (SPEC I5), and
faults set per run (BILLING_GATEWAY_FAULTS) so that a network fault between us and the gateway can happen in tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from billing import config
from billing.cards import CardIn, PayPalIn
from billing.config import parse_duration
from billing.logging import get_logger
from billing.money import round_money
from starter.processes import binary, die_with_parent, free_port
from store.db import Database
from store.gateway import IdempotencyConflict, SandboxGateway, UnknownToken, create_ledger
from store.gateway_http import (At, CardTokenRequest, ChargeRequestBody, LedgerEntry, MandateRequestBody,
                                PayPalTokenRequest, RefundRequestBody)

log = get_logger("starter.gateway_service")

DEFAULT_PORT = 8099
DATABASE_URL_ENV = "BILLING_GATEWAY_DATABASE_URL"
FAULTS_ENV = "BILLING_GATEWAY_FAULTS"
WEBHOOK_URL_ENV = "BILLING_GATEWAY_WEBHOOK_URL"
POLL = timedelta(seconds=1)  # a new PROCESSING charge may appear at any moment
FIRST_RETRY, MAX_RETRY = timedelta(seconds=1), timedelta(minutes=5)
FAULT_KINDS = ("error_500", "timeout_before", "timeout_after", "slow")


async def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def default_database_url() -> str:
    return f"sqlite:///{config.DATA_DIR / 'gateway.db'}"


@dataclass
class Faults:
    """What share of the money-moving requests (charges, refunds) goes wrong, decided per request:

    - `error_500`: answered 500 before anything is recorded;
    - `timeout_before`: held `hang` seconds (past the client's timeout), nothing recorded, then 503;
    - `timeout_after`: the charge is recorded, then held `hang` seconds: the client never hears of it;
    - `slow`: answered after `slow_seconds`, within the client's timeout.
    `duplicate_webhooks`: every webhook is POSTed twice (a gateway's at-least-once delivery).

    Spec: comma-separated `name=value`, e.g. `error_500=0.1,timeout_before=0.1,timeout_after=0.1,hang=3,seed=7`.
    """

    shares: dict[str, float] = field(default_factory=dict)
    hang: float = 15.0
    slow_seconds: float = 1.0
    duplicate_webhooks: bool = False
    seed: int | None = None
    injected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        if sum(self.shares.values()) > 1:
            raise ValueError("fault shares add up to more than 1")

    @classmethod
    def parse(cls, spec: str) -> "Faults":
        shares: dict[str, float] = {}
        options: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(f"{FAULTS_ENV}: {part!r} is not name=value")
            if name in FAULT_KINDS:
                shares[name] = float(value)
            elif name in ("hang", "slow_seconds"):
                options[name] = float(value)
            elif name == "seed":
                options[name] = int(value)
            elif name == "duplicate_webhooks":
                options[name] = value.strip().lower() in ("1", "true", "yes")
            else:
                raise ValueError(f"{FAULTS_ENV}: unknown fault {name!r} (known: {', '.join(FAULT_KINDS)}, hang, "
                                 "slow_seconds, seed, duplicate_webhooks)")
        return cls(shares=shares, **options)

    def draw(self) -> str | None:
        """The fault for this request, or None; counted once drawn."""
        with self._lock:
            roll = self._random.random()
            for kind in FAULT_KINDS:
                share = self.shares.get(kind, 0.0)
                if roll < share:
                    self.injected[kind] += 1
                    return kind
                roll -= share
            return None


class GatewayWebhookSender:
    """The sandbox issuer's sender: sleeps until `gateway.next_webhook_at()`, POSTs what is due, and sends a
    webhook again (same id) until our endpoint answers 2xx, or 409 for one it had already received."""

    def __init__(self, gateway: SandboxGateway, url: str, clock: Callable[[], Awaitable[datetime]] = wall_clock,
                 http: httpx.AsyncClient | None = None, copies: int = 1) -> None:
        self.gateway, self.url, self.clock, self.copies = gateway, url, clock, copies
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.retry = FIRST_RETRY
        self.sent = 0

    async def deliver_due(self) -> tuple[int, int]:
        """Send every due webhook once (or `copies` times): (how many our endpoint took, how many were due)."""
        taken = 0
        due = await asyncio.to_thread(self.gateway.due_webhooks, await self.clock())
        for webhook in due:
            accepted = False
            for _ in range(self.copies):
                try:
                    answer = await self.http.post(self.url, content=webhook.body,
                                                  headers={"content-type": "application/json", **webhook.headers})
                except httpx.HTTPError as err:
                    log.warning("gateway webhook not delivered", charge=webhook.charge_id, error=str(err))
                    continue
                self.sent += 1
                if answer.is_success or answer.status_code == 409:
                    accepted = True
                    log.info("gateway webhook delivered", charge=webhook.charge_id, status=answer.status_code)
                else:
                    log.warning("gateway webhook refused", charge=webhook.charge_id, status=answer.status_code,
                                detail=answer.text[:300])
            if accepted:
                await asyncio.to_thread(self.gateway.webhook_delivered, webhook.charge_id)
                taken += 1
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


def create_app(gateway: SandboxGateway, faults: Faults | None = None, webhook_url: str | None = None) -> FastAPI:
    faults = faults or Faults()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(create_ledger, gateway.db)
        sender = sending = None
        if webhook_url:
            sender = GatewayWebhookSender(gateway, webhook_url, copies=2 if faults.duplicate_webhooks else 1)
            sending = asyncio.create_task(sender.run())
            log.info("gateway webhooks on", url=webhook_url, copies=sender.copies)
        app.state.sender = sender
        try:
            yield
        finally:
            if sending is not None:
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
                await sender.close()

    app = FastAPI(title="Sandbox payment gateway", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(UnknownToken)
    async def unknown_token(_: Request, err: UnknownToken) -> JSONResponse:
        return JSONResponse({"error": "unknown_token", "detail": f"unknown token {err}"}, status_code=404)

    @app.exception_handler(IdempotencyConflict)
    async def conflict(_: Request, err: IdempotencyConflict) -> JSONResponse:
        return JSONResponse({"error": "idempotency_conflict", "detail": str(err)}, status_code=409)

    @app.exception_handler(ValueError)
    async def invalid(_: Request, err: ValueError) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "detail": str(err)}, status_code=400)

    async def with_faults(work: Callable[[], object]) -> object:
        """A money-moving request under the run's fault mode (see Faults)."""
        fault = faults.draw()
        if fault is not None:
            log.info("fault injected", fault=fault)
        if fault == "error_500":
            raise HTTPException(500, "injected fault")
        if fault == "timeout_before":
            await asyncio.sleep(faults.hang)
            raise HTTPException(503, "injected fault: timed out before charging")
        result = await asyncio.to_thread(work)
        if fault == "timeout_after":
            await asyncio.sleep(faults.hang)
        elif fault == "slow":
            await asyncio.sleep(faults.slow_seconds)
        return result

    @app.get("/health")
    async def health() -> dict:
        await asyncio.to_thread(gateway.charge_by_key, "health")  # answers once its database does
        return {"status": "ok"}

    @app.post("/v1/tokens/card")
    async def tokenize_card(body: CardTokenRequest) -> dict:
        try:
            card = CardIn.model_validate({"type": "card", "number": body.number, "exp": body.exp, "cvc": body.cvc,
                                          "name": body.name}, context={"today": body.at})
        except ValidationError as err:
            raise HTTPException(422, f"invalid card: {err.errors()[0]['msg']}") from None
        return (await asyncio.to_thread(gateway.tokenize_card, card, body.at)).model_dump()

    @app.post("/v1/tokens/paypal")
    async def tokenize_paypal(body: PayPalTokenRequest) -> dict:
        account = PayPalIn(type="paypal", email=body.email)
        return (await asyncio.to_thread(gateway.tokenize_paypal, account, body.at)).model_dump()

    @app.post("/v1/tokens/{token}/authenticate", status_code=204)
    async def authenticate(token: str) -> None:
        await asyncio.to_thread(gateway.authenticate, token)

    @app.post("/v1/charges")
    async def charge(body: ChargeRequestBody, idempotency_key: str = Header()) -> dict:
        result = await with_faults(lambda: gateway.charge(
            idempotency_key=idempotency_key, token=body.token, amount=body.amount, currency=body.currency,
            at=body.at, usd_amount=body.usd_amount, on_session=body.on_session))
        return result.model_dump(mode="json")

    @app.get("/v1/charges")
    async def charge_by_key(idempotency_key: str) -> dict:
        """What Kill Bill's Janitor asks a plugin after a timeout: did the charge under this key happen?"""
        found = await asyncio.to_thread(gateway.charge_by_key, idempotency_key)
        if found is None:
            raise HTTPException(404, f"no charge with idempotency key {idempotency_key}")
        return found.model_dump(mode="json")

    @app.post("/v1/refunds")
    async def refund(body: RefundRequestBody, idempotency_key: str = Header()) -> dict:
        result = await with_faults(lambda: gateway.refund(idempotency_key=idempotency_key, charge_id=body.charge_id,
                                                          at=body.at))
        return result.model_dump(mode="json")

    @app.post("/v1/charges/{charge_id}/authorize", status_code=204)
    async def authorize(charge_id: str, body: At) -> None:
        await asyncio.to_thread(gateway.authorize, charge_id=charge_id, at=body.at)

    @app.post("/v1/charges/{charge_id}/cancel", status_code=204)
    async def cancel(charge_id: str, body: At) -> None:
        await asyncio.to_thread(gateway.cancel, charge_id=charge_id, at=body.at)

    @app.post("/v1/mandates")
    async def register_mandate(body: MandateRequestBody) -> dict:
        result = await asyncio.to_thread(gateway.register_mandate, token=body.token, limit=body.limit,
                                         currency=body.currency, at=body.at)
        return result.model_dump(mode="json")

    @app.post("/v1/mandates/{mandate_id}/revoke", status_code=204)
    async def revoke_mandate(mandate_id: str, body: At) -> None:
        await asyncio.to_thread(gateway.revoke_mandate, mandate_id=mandate_id, at=body.at)

    # Webhooks on the caller's clock: the simulator moves its business clock to each due instant and delivers
    # what is due itself (the service's own sender runs on the wall clock).
    @app.get("/v1/webhooks/next")
    async def next_webhook() -> dict:
        return {"at": await asyncio.to_thread(gateway.next_webhook_at)}

    @app.post("/v1/webhooks/due")
    async def due_webhooks(body: At) -> list[dict]:
        due = await asyncio.to_thread(gateway.due_webhooks, body.at)
        return [{"charge_id": w.charge_id, "body": w.body.decode(), "headers": w.headers} for w in due]

    @app.post("/v1/webhooks/{charge_id}/delivered", status_code=204)
    async def webhook_delivered(charge_id: str) -> None:
        await asyncio.to_thread(gateway.webhook_delivered, charge_id)

    @app.get("/v1/ledger")
    async def ledger(kind: str = "charge", outcome: str | None = None) -> list[dict]:
        rows = await asyncio.to_thread(gateway.charges, kind=kind, outcome=outcome)
        return [LedgerEntry.model_validate(row.model_dump() | {"amount": round_money(row.amount, row.currency)})
                .model_dump(mode="json") for row in rows]

    @app.get("/v1/faults")
    async def injected() -> dict:
        counts = {kind: faults.injected.get(kind, 0) for kind in FAULT_KINDS}
        sender = app.state.sender
        return counts | {"webhooks_sent": sender.sent if sender else 0}

    return app


def app_from_env(database_url: str | None = None) -> tuple[FastAPI, Database]:
    db = Database(database_url or os.environ.get(DATABASE_URL_ENV) or default_database_url())
    gateway = SandboxGateway(db, rbi_processing=parse_duration(os.environ.get("BILLING_RBI_PROCESSING", "3d")))
    faults = Faults.parse(os.environ.get(FAULTS_ENV, ""))
    return create_app(gateway, faults, os.environ.get(WEBHOOK_URL_ENV) or None), db


async def serve(host: str, port: int, database_url: str | None = None) -> None:
    """`billing gateway serve`: until SIGTERM/SIGINT (uvicorn's own handlers)."""
    app, db = app_from_env(database_url)
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    log.info("sandbox gateway starting", host=host, port=port)
    try:
        await server.serve()
    finally:
        db.dispose()


class GatewayServer:
    """`billing gateway serve` as a child process on a free port: for `billing simulate`, the tests and the fault
    suite. Linux ends it if its parent dies (starter.processes)."""

    def __init__(self, *, database_url: str, faults: str = "", webhook_url: str | None = None,
                 rbi_processing: timedelta | None = None, port: int | None = None, host: str = "127.0.0.1",
                 log_file: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log_file = log_file
        self.env = {**os.environ, DATABASE_URL_ENV: database_url, FAULTS_ENV: faults, **(extra_env or {})}
        self.env.pop(WEBHOOK_URL_ENV, None)
        if webhook_url:
            self.env[WEBHOOK_URL_ENV] = webhook_url
        if rbi_processing is not None:
            self.env["BILLING_RBI_PROCESSING"] = f"{int(rbi_processing.total_seconds())}s"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [binary("billing"), "gateway", "serve", "--host", self.host, "--port", str(self.port)]

    def start(self) -> None:
        """Start it from the thread that keeps running (Linux ends the child with the thread that forked it)."""
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=die_with_parent())
        finally:
            if self.log_file:
                out.close()

    async def ready(self, timeout: float = 30.0) -> None:
        """Once /health answers 200 (its ledger database is ready)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while not await self._answered(http.get(self.url + "/health"), deadline, timeout):
                await asyncio.sleep(0.05)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """`ready` for callers without an event loop (test fixtures)."""
        asyncio.run(self.ready(timeout))

    async def _answered(self, health: Awaitable[httpx.Response], deadline: float, timeout: float) -> bool:
        if self.process is not None and self.process.poll() is not None:
            health.close()
            raise RuntimeError(f"the gateway exited with code {self.process.returncode}")
        try:
            if (await health).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not answer on {self.url} within {timeout:.0f} s")
        return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

