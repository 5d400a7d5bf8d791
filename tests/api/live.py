"""The API over a real worker on the time-skipping server: for the routes that start, signal or update workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio

from api.app import create_app
from services.client import BillingClient
from store.db import Database
from store.gateway import SandboxGateway
from worker import build_worker


@dataclass
class Live:
    api: httpx.AsyncClient
    billing: BillingClient
    gateway: SandboxGateway
    db: Database
    env: object
    inbox: object


@pytest_asyncio.fixture
async def live(time_skipping_env, two_orgs, smtp_server, task_queue) -> AsyncIterator[Live]:
    inbox, smtp = smtp_server
    gateway = SandboxGateway(two_orgs)
    billing = BillingClient(time_skipping_env.client, two_orgs, gateway, clock=time_skipping_env.get_current_time,
                            task_queue=task_queue)
    app = create_app(billing)
    async with build_worker(time_skipping_env.client, two_orgs, gateway, smtp, task_queue=task_queue):
        with time_skipping_env.auto_time_skipping_disabled():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                         base_url="http://api.test", timeout=120) as client:
                yield Live(api=client, billing=billing, gateway=gateway, db=two_orgs, env=time_skipping_env,
                           inbox=inbox)
