"""The HTTP API on a time-skipping Temporal server with a real worker: for the routes that start, signal or update
workflows (tests/api/test_invoice_actions.py, test_operator.py, test_usage.py, test_roles.py, test_schema.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from api.app import create_app
from services.client import BillingClient
from store.db import Database
from store.gateway import SandboxGateway
from worker import build_worker


@dataclass
class WorkflowApi:
    http: httpx.AsyncClient
    billing: BillingClient
    gateway: SandboxGateway


@contextlib.asynccontextmanager
async def workflow_api(env, db: Database, smtp, task_queue: str,
                       gateway: SandboxGateway | None = None) -> AsyncIterator[WorkflowApi]:
    """The ASGI app over a BillingClient on `env` (its business clock), a worker on `task_queue` running meanwhile."""
    gateway = gateway or SandboxGateway(db)
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    app = create_app(billing)
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://api.test", timeout=60) as http:
            yield WorkflowApi(http=http, billing=billing, gateway=gateway)
