"""The HTTP API inside `make run`: uvicorn on API_PORT, and `data/demo.env` with working demo keys."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import uvicorn

from api.app import create_app
from billing.permissions import ApiRole
from services import apikeys, signin
from services.client import BillingClient

DEMO_ORG = "demo"


class ApiServer:
    def __init__(self, billing: BillingClient, host: str, port: int) -> None:
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(create_app(billing), host=host, port=port, log_config=None, access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # the runner owns SIGINT/SIGTERM
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises what stopped it (e.g. the port was taken meanwhile)
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.05)
        return self.task

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                values[name.strip()] = value.strip()
    return values


DEMO_OWNER = "owner@demo.test"
DEMO_LOGIN_TTL = timedelta(hours=24)


def demo_login_url(billing: BillingClient, api_url: str) -> str:
    """A one-time sign-in link for the demo organization's owner (G5): opened in a browser, it lands on the demo's
    invoices. A new one on every start; it works once, for a day."""
    token = signin.issue_link_token(billing.db, DEMO_ORG, DEMO_OWNER, datetime.now(timezone.utc), DEMO_LOGIN_TTL)
    if token is None:
        raise RuntimeError(f"{DEMO_OWNER} is not a member of the demo organization {DEMO_ORG!r}")
    return f"{api_url}/orgs/{DEMO_ORG}/signin/{token}"


def write_demo_env(billing: BillingClient, path: Path, api_url: str) -> dict[str, str]:
    """`data/demo.env`: the API's URL, the demo owner's key and an operator key. Keys that still work are kept
    (a key exists only where it was printed), others are created."""
    old = _read_env(path)
    owner, operator = old.get("BILLING_API_KEY"), old.get("BILLING_OPERATOR_KEY")
    found = apikeys.authenticate(billing.db, owner) if owner else None
    if found is None or found.org_id != DEMO_ORG or found.role is not ApiRole.ORGANIZATION_OWNER:
        owner = apikeys.create_key(billing.db, ApiRole.ORGANIZATION_OWNER, org_id=DEMO_ORG,
                                   name="demo owner (make run)").secret
    found = apikeys.authenticate(billing.db, operator) if operator else None
    if found is None or not found.is_operator:
        operator = apikeys.create_key(billing.db, ApiRole.OPERATOR, name="operator (make run)").secret
    values = {"BILLING_API_URL": api_url, "BILLING_API_KEY": owner, "BILLING_OPERATOR_KEY": operator,
              "BILLING_DEMO_LOGIN_URL": demo_login_url(billing, api_url)}
    path.write_text("# Written by `make run`: `set -a; . data/demo.env; set +a` before the README's curl session.\n"
                    + "".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)
    return values


async def serve_standalone(host: str, port: int) -> None:
    """The API as its own process (compose's `billing-api` service): Temporal and the database from the
    environment, as the workers use them; no worker runs here."""
    from billing import config
    from store.db import Database
    from store.gateway_http import configured_gateway
    from worker import connect

    db = Database(config.database_url())
    client = await connect()
    app = create_app(BillingClient(client, db, configured_gateway(db)))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))
    try:
        await server.serve()  # SIGTERM/SIGINT stop it gracefully (uvicorn's own handlers)
    finally:
        db.dispose()
