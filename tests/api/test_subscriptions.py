"""Subscriptions and activation codes through the API (SPEC D1, D2): sales adds them with an operator key; the
customer applies the e-mailed code; support re-issues a lost one."""

from __future__ import annotations

import re
from email import message_from_bytes

import pytest

from billing.permissions import ApiRole
from starter.idle import wait_until_at_rest
from tests.api.conftest import OTHER, OWN, auth
from tests.api.live import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.asyncio

OWNER, READER, OPERATOR = ApiRole.ORGANIZATION_OWNER, ApiRole.ORGANIZATION_READ_ONLY, ApiRole.OPERATOR
MONTHLY = {"type": "monthly_commitment", "term_start": "2027-01-01", "term_months": 12, "commitment": "12000.00"}


async def test_sales_adds_a_subscription_with_an_operator_key(api, keys):
    added = await api.post("/v1/subscriptions", params={"org": OWN}, json=MONTHLY, headers=auth(keys[OPERATOR]))
    assert added.status_code == 201, added.text
    assert added.json()["activation_workflow_id"] is None
    listed = (await api.get("/v1/subscriptions", headers=auth(keys[READER]))).json()
    assert [(s["type"], s["status"], s["commitment"], s["term_end"]) for s in listed] == [
        ("monthly_commitment", "ACTIVE", "12000.00", "2027-12-31")]
    assert (await api.get("/v1/subscriptions", params={"org": OTHER}, headers=auth(keys[OPERATOR]))).json() == []


async def test_subscription_routes_refuse_what_they_must(api, keys):
    assert (await api.post("/v1/subscriptions", json=MONTHLY, headers=auth(keys[OWNER]))).status_code == 403
    assert (await api.post("/v1/subscriptions", json=MONTHLY)).status_code == 401
    assert (await api.post("/v1/subscriptions", params={"org": "nobody"}, json=MONTHLY,
                           headers=auth(keys[OPERATOR]))).status_code == 404
    assert (await api.get("/v1/subscriptions", params={"org": OWN},
                          headers=auth(keys.other_org_owner))).status_code == 404
    assert (await api.get("/v1/subscriptions", headers=auth(keys[ApiRole.PROJECT_READ_ONLY]))).status_code == 403
    invalid = await api.post("/v1/subscriptions", params={"org": OWN},
                             json={**MONTHLY, "term_start": "2027-01-15", "commitment": 12000.5},
                             headers=auth(keys[OPERATOR]))
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"body.term_start", "body.commitment"}
    assert (await api.get("/v1/subscriptions", headers=auth(keys[OWNER]))).json() == []


async def test_activation_routes_refuse_what_they_must(api, keys):
    assert (await api.get("/v1/activation", headers=auth(keys[READER]))).json() == []
    assert (await api.get("/v1/activation")).status_code == 401
    assert (await api.get("/v1/activation", params={"org": OWN},
                          headers=auth(keys.other_org_owner))).status_code == 404
    missing = await api.post("/v1/activation/apply", json={}, headers=auth(keys[OWNER]))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.code"
    assert (await api.post("/v1/activation/apply", json={"code": "X"},
                           headers=auth(keys[READER]))).status_code == 403
    assert (await api.post("/v1/activation/apply", json={"code": "X"}, params={"org": OWN},
                           headers=auth(keys.other_org_owner))).status_code == 404
    assert (await api.post("/v1/activation/reissue", headers=auth(keys[OWNER]))).status_code == 403
    assert (await api.post("/v1/activation/reissue")).status_code == 401


def codes(inbox, org: str) -> list[str]:
    found = []
    for envelope in inbox.messages:
        message = message_from_bytes(envelope.content)
        if message["Subject"] == f"Your subscription activation code for organization {org}":
            found += re.findall(r"Activation code: (\S+)", message.get_payload(decode=True).decode())
    return found


async def test_a_pending_code_is_reissued_then_applied(live, keys):
    operator, owner = auth(keys[OPERATOR]), auth(keys[OWNER])
    before = len(codes(live.inbox, OWN))
    added = await live.api.post("/v1/subscriptions", params={"org": OWN},
                                json={**MONTHLY, "type": "prepaid", "activation_code": "pending"}, headers=operator)
    assert added.status_code == 201, added.text
    workflow_id = added.json()["activation_workflow_id"]
    await wait_until_at_rest(live.env.client, [workflow_id])
    [activation] = (await live.api.get("/v1/activation", headers=auth(keys[READER]))).json()
    assert (activation["status"], activation["codes_issued"]) == ("PENDING", 1)
    wrong = await live.api.post("/v1/activation/apply", json={"code": "AAAAA-AAAAA-AAAAA-AAAAA"}, headers=owner)
    assert wrong.status_code == 409
    reissued = await live.api.post("/v1/activation/reissue", params={"org": OWN}, headers=operator)
    assert reissued.status_code == 200 and reissued.json() == {"codes_issued": 2}
    await wait_until_at_rest(live.env.client, [workflow_id])
    first, second = codes(live.inbox, OWN)[before:]
    assert (await live.api.post("/v1/activation/apply", json={"code": first}, headers=owner)).status_code == 409
    applied = await live.api.post("/v1/activation/apply", json={"code": second.lower()}, headers=owner)
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "APPLIED" and second not in applied.text
    await live.env.client.get_workflow_handle(workflow_id).result()
    [subscription] = (await live.api.get("/v1/subscriptions", headers=owner)).json()
    assert subscription["status"] == "ACTIVE"
    again = await live.api.post("/v1/activation/apply", json={"code": second}, headers=owner)
    assert again.status_code == 409 and again.json()["type"] == "/problems/nothing-to-do"
