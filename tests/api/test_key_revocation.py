"""A revoked API key stops working (SPEC I2): at once when every request asks the database, and otherwise within
ApiSettings.key_check_seconds of its revocation, the bound of the API's memory of keys it found valid."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from api.context import ApiSettings
from billing.permissions import ApiRole
from services import apikeys
from services.client import BillingClient
from store.db import Database
from store.gateway import SandboxGateway
from tests.api.conftest import OWN, auth, fixed_clock

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(db: Database, seconds: float, clock: Clock | None = None) -> httpx.AsyncClient:
    app = create_app(BillingClient(None, db, SandboxGateway(db), clock=fixed_clock),  # type: ignore[arg-type]
                     ApiSettings(key_check_seconds=seconds))
    if clock is not None:
        app.state.context.recent_keys.clock = clock
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


def owner_key(db: Database) -> apikeys.CreatedKey:
    return apikeys.create_key(db, ApiRole.ORGANIZATION_OWNER, org_id=OWN, name="revoked later")


async def test_without_memory_a_revoked_key_is_refused_on_the_next_request(two_orgs):
    key = owner_key(two_orgs)
    async with client(two_orgs, seconds=0) as api:
        assert (await api.get("/v1/invoices", headers=auth(key.secret))).status_code == 200
        apikeys.revoke_key(two_orgs, key.id)
        refused = await api.get("/v1/invoices", headers=auth(key.secret))
    assert refused.status_code == 401 and refused.json()["detail"] == "unknown or revoked API key"


async def test_a_revoked_key_stops_working_within_the_bound(two_orgs):
    clock = Clock()
    key = owner_key(two_orgs)
    async with client(two_orgs, seconds=2.0, clock=clock) as api:
        assert (await api.get("/v1/invoices", headers=auth(key.secret))).status_code == 200
        apikeys.revoke_key(two_orgs, key.id)
        clock.now += 1.9  # inside the bound the key found valid 1.9 s ago is not asked again...
        assert (await api.get("/v1/invoices", headers=auth(key.secret))).status_code == 200
        clock.now += 0.1  # ...and at the bound it is, and refused from then on
        assert (await api.get("/v1/invoices", headers=auth(key.secret))).status_code == 401
        clock.now += 60
        assert (await api.get("/v1/invoices", headers=auth(key.secret))).status_code == 401


async def test_a_key_revoked_before_its_first_use_and_an_unknown_key_are_refused_at_once(two_orgs):
    key = owner_key(two_orgs)
    apikeys.revoke_key(two_orgs, key.id)
    async with client(two_orgs, seconds=2.0, clock=Clock()) as api:
        assert (await api.get("/v1/invoices", headers=auth(key.secret))).status_code == 401
        assert (await api.get("/v1/invoices", headers=auth(apikeys.KEY_PREFIX + "unknown"))).status_code == 401
        created = owner_key(two_orgs)  # refusals are not remembered: a new key works at once
        assert (await api.get("/v1/invoices", headers=auth(created.secret))).status_code == 200
