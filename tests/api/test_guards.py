"""The guards in front of every route: Idempotency-Key (I3), the body size limit (413), problem+json (I4)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from api.app import create_app
from api.auth import Caller
from api.context import ApiSettings
from billing.permissions import ApiRole
from services.client import BillingClient
from store.gateway import SandboxGateway
from tests.api.conftest import auth, fixed_clock

pytestmark = pytest.mark.asyncio


class Order(BaseModel):
    amount: str


@pytest.fixture
def counted(two_orgs):
    """The API with one extra POST route that counts how often it really ran."""
    calls: list[str] = []
    router = APIRouter()

    @router.post("/v1/test-orders", status_code=201)
    async def create(order: Order, caller: Caller) -> dict:
        calls.append(order.amount)
        if order.amount == "boom":
            raise RuntimeError("database password=hunter2 at line 3")
        await asyncio.sleep(0.05)
        return {"order": len(calls), "amount": order.amount}

    app = create_app(BillingClient(None, two_orgs, SandboxGateway(two_orgs), clock=fixed_clock),
                     ApiSettings(max_body_bytes=1000))
    app.include_router(router)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                               base_url="http://api.test")
    return client, calls


async def test_same_key_same_body_answers_the_first_response(counted, keys):
    client, calls = counted
    headers = {**auth(keys[ApiRole.ORGANIZATION_OWNER]), "Idempotency-Key": "order-1"}
    first = await client.post("/v1/test-orders", json={"amount": "10.00"}, headers=headers)
    again = await client.post("/v1/test-orders", json={"amount": "10.00"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"order": 1, "amount": "10.00"}
    assert again.headers["idempotent-replayed"] == "true"
    assert calls == ["10.00"]


async def test_same_key_other_body_is_409(counted, keys):
    client, calls = counted
    headers = {**auth(keys[ApiRole.ORGANIZATION_OWNER]), "Idempotency-Key": "order-2"}
    await client.post("/v1/test-orders", json={"amount": "10.00"}, headers=headers)
    other = await client.post("/v1/test-orders", json={"amount": "99.00"}, headers=headers)
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert calls == ["10.00"]


async def test_concurrent_requests_with_one_key_run_once(counted, keys):
    client, calls = counted
    headers = {**auth(keys[ApiRole.ORGANIZATION_OWNER]), "Idempotency-Key": "order-3"}
    answers = await asyncio.gather(*(client.post("/v1/test-orders", json={"amount": "5.00"}, headers=headers)
                                     for _ in range(5)))
    assert calls == ["5.00"]
    assert sorted(a.status_code for a in answers).count(201) >= 1
    assert all(a.status_code in (201, 409) for a in answers)


async def test_keys_are_per_caller(counted, keys):
    client, calls = counted
    for key in (keys[ApiRole.ORGANIZATION_OWNER], keys.other_org_owner):
        response = await client.post("/v1/test-orders", json={"amount": "1.00"},
                                     headers={**auth(key), "Idempotency-Key": "shared"})
        assert response.status_code == 201
    assert calls == ["1.00", "1.00"]


async def test_a_failure_on_our_side_is_not_kept_and_shows_no_internals(counted, keys):
    client, calls = counted
    headers = {**auth(keys[ApiRole.ORGANIZATION_OWNER]), "Idempotency-Key": "order-4"}
    failed = await client.post("/v1/test-orders", json={"amount": "boom"}, headers=headers)
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in failed.text and "Traceback" not in failed.text and "RuntimeError" not in failed.text
    await client.post("/v1/test-orders", json={"amount": "boom"}, headers=headers)
    assert calls == ["boom", "boom"]  # the key was released: a retry runs again


async def test_unauthenticated_requests_keep_nothing(counted, keys):
    client, calls = counted
    refused = await client.post("/v1/test-orders", json={"amount": "1.00"}, headers={"Idempotency-Key": "k"})
    assert refused.status_code == 401
    accepted = await client.post("/v1/test-orders", json={"amount": "1.00"},
                                 headers={**auth(keys[ApiRole.BILLING_ADMIN]), "Idempotency-Key": "k"})
    assert accepted.status_code == 201


async def test_too_large_bodies_are_413(counted, keys):
    client, calls = counted
    response = await client.post("/v1/test-orders", content=b'{"amount": "' + b"9" * 2000 + b'"}',
                                 headers={**auth(keys[ApiRole.ORGANIZATION_OWNER]), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert calls == []


async def test_invalid_body_names_the_field(counted, keys):
    client, calls = counted
    response = await client.post("/v1/test-orders", json={"amount": 3},
                                 headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.amount"
    malformed = await client.post("/v1/test-orders", content=b"{not json",
                                  headers={**auth(keys[ApiRole.ORGANIZATION_OWNER]),
                                           "Content-Type": "application/json"})
    assert malformed.status_code == 422 and "Traceback" not in malformed.text


async def test_stored_hashes_are_keyed(counted, keys, two_orgs):
    """A6: a body may hold a card number; its stored hash must not be an unkeyed SHA-256 anyone can recompute."""
    import hashlib

    from sqlmodel import select

    from store.tables import IdempotencyRecord

    client, calls = counted
    body = b'{"amount": "4242424242424242"}'
    await client.post("/v1/test-orders", content=body, headers={**auth(keys[ApiRole.ORGANIZATION_OWNER]),
                                                                "Idempotency-Key": "pan", "Content-Type": "application/json"})
    with two_orgs.session() as s:
        record = s.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "pan")).one()
    assert record.request_hash != hashlib.sha256(b"\n".join([b"POST", b"/v1/test-orders", b"", body])).hexdigest()
    assert record.scope != hashlib.sha256(f"Bearer {keys[ApiRole.ORGANIZATION_OWNER]}".encode()).hexdigest()
