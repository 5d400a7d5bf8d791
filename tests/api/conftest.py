"""The HTTP API under test: the ASGI app in process (httpx), on SQLite and PostgreSQL, with a key per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from billing.permissions import ApiRole
from services import apikeys
from services.client import BillingClient
from store.db import Database
from store.gateway import SandboxGateway
from tests.factories import AT, org_with_method

NOW = datetime(2027, 2, 15, 12, 0, tzinfo=timezone.utc)
OWN, OTHER = "acme", "globex"
PROJECT = "analytics"


@dataclass
class Keys:
    """A key of every role of organization `acme`, one of `globex`, and an operator key."""

    by_role: dict[ApiRole, str]
    other_org_owner: str

    def __getitem__(self, role: ApiRole) -> str:
        return self.by_role[role]


def make_keys(db: Database) -> Keys:
    by_role = {}
    for role in ApiRole:
        org = None if role is ApiRole.OPERATOR else OWN
        project = PROJECT if role.is_project_role else None
        by_role[role] = apikeys.create_key(db, role, org_id=org, project=project, name=f"{role.value} test key").secret
    other = apikeys.create_key(db, ApiRole.ORGANIZATION_OWNER, org_id=OTHER, name="globex owner").secret
    return Keys(by_role=by_role, other_org_owner=other)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def two_orgs(db: Database) -> Database:
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, org_id=OWN, created=AT)
    org_with_method(db, gateway, org_id=OTHER, created=AT)
    return db


@pytest.fixture
def keys(two_orgs: Database) -> Keys:
    return make_keys(two_orgs)


async def fixed_clock() -> datetime:
    return NOW


@pytest_asyncio.fixture
async def api(two_orgs: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The API without a Temporal server: enough for every route that only reads or refuses."""
    billing = BillingClient(None, two_orgs, SandboxGateway(two_orgs), clock=fixed_clock)  # type: ignore[arg-type]
    app = create_app(billing)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://api.test") as client:
        yield client
