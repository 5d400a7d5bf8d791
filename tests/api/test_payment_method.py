"""The payment method through the API (SPEC A4-A6, E1, F1-F2): masked reads, replacement (the card number stops at
the gateway: no response, stored idempotent response or workflow history holds it), SCA re-authentication."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import select

from billing.permissions import ApiRole
from contracts.flows import org_billing_workflow_id
from store.gateway import SandboxGateway
from store.tables import IdempotencyRecord, Mandate, Payment, PaymentMethod
from tests.api.conftest import OTHER, OWN, auth
from tests.api.live import live  # noqa: F401  (fixture)
from tests.factories import AT, SCA, VISA, card, closed_invoice
from tests.leaks import assert_no_secrets
from starter.idle import wait_until_at_rest
from workflows.payment import PaymentWorkflow

pytestmark = pytest.mark.asyncio

OWNER, ADMIN, READER = ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN, ApiRole.ORGANIZATION_READ_ONLY
INDIA = "4000003560000123"
FEB_1 = datetime(2027, 2, 1, tzinfo=timezone.utc)


def new_card(number: str = VISA, **extra) -> dict:
    return {"method": {"type": "card", "number": number, "exp": "12/30", "cvc": "123", "name": "Ada Lovelace"},
            **extra}


def put_on_file(db, number: str, org: str = OWN, mandate: bool = False) -> None:
    tokenized = SandboxGateway(db).tokenize_card(card(number), AT)
    with db.session() as s:
        method = PaymentMethod(org_id=org, created_at=AT, **tokenized.model_dump())
        s.add(method)
        s.flush()
        if mandate:
            s.add(Mandate(org_id=org, payment_method_id=method.id, gateway_mandate_id="md_test",
                          registration_key="test", limit=Decimal("1400.00"), registered_at=AT))


async def test_no_method_on_file_reads_as_none(api, keys):
    response = await api.get("/v1/payment-method", headers=auth(keys[READER]))
    assert response.status_code == 200 and response.json() == {"method": None}


async def test_an_india_card_reads_masked_with_its_mandate(api, keys, two_orgs):
    put_on_file(two_orgs, INDIA, mandate=True)
    response = await api.get("/v1/payment-method", headers=auth(keys[ADMIN]))
    method = response.json()["method"]
    assert (method["kind"], method["brand"], method["last4"], method["exp_month"], method["exp_year"],
            method["issuing_country"]) == ("card", "visa", "0123", 12, 2030, "IN")
    assert method["mandate"]["status"] == "ACTIVE" and method["mandate"]["limit"] == "1400.00"  # E1
    assert "token" not in response.text and "tok_" not in response.text and INDIA not in response.text


async def test_payment_method_routes_refuse_keys_without_rights(api, keys, two_orgs):
    put_on_file(two_orgs, VISA, org=OTHER)
    assert (await api.get("/v1/payment-method")).status_code == 401
    assert (await api.get("/v1/payment-method", headers=auth(keys[ApiRole.PROJECT_OWNER]))).status_code == 403
    assert (await api.get("/v1/payment-method", params={"org": OTHER},
                          headers=auth(keys[OWNER]))).status_code == 404
    for path, body in (("/v1/payment-method", new_card()), ("/v1/payment-method/reauthenticate", None)):
        assert (await api.post(path, json=body)).status_code == 401
        assert (await api.post(path, json=body, headers=auth(keys[READER]))).status_code == 403
        other = await api.post(path, json=body, params={"org": OWN}, headers=auth(keys.other_org_owner))
        assert other.status_code == 404


async def test_an_invalid_card_names_the_field_and_never_echoes_the_number(api, keys, two_orgs):
    bad = "4242424242424241"
    response = await api.post("/v1/payment-method", json=new_card(bad), headers={**auth(keys[OWNER]),
                                                                                  "Idempotency-Key": "bad-card"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.method.card.number"]
    assert bad not in response.text
    expired = await api.post("/v1/payment-method", json={"method": {**new_card()["method"], "exp": "01/20"}},
                             headers=auth(keys[OWNER]))
    assert [e["field"] for e in expired.json()["errors"]] == ["body.method.card.exp"]
    with two_orgs.session() as s:
        assert s.exec(select(PaymentMethod)).all() == []
        assert all(bad.encode() not in (r.body or b"") for r in s.exec(select(IdempotencyRecord)))


async def test_a_new_card_replaces_the_method_and_its_number_stays_at_the_edge(live, keys):
    headers = {**auth(keys[ADMIN]), "Idempotency-Key": "new-card"}
    response = await live.api.post("/v1/payment-method", json=new_card(VISA), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"]["last4"] == "4242" and body["authenticated"] is False and body["retried"] == []
    replayed = await live.api.post("/v1/payment-method", json=new_card(VISA), headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.json() == body
    paypal = await live.api.post("/v1/payment-method", json={"method": {"type": "paypal", "email": "pay@acme.test"}},
                                 headers=auth(keys[OWNER]))
    assert paypal.status_code == 200, paypal.text
    on_file = (await live.api.get("/v1/payment-method", headers=auth(keys[READER]))).json()["method"]
    assert (on_file["kind"], on_file["paypal_email"]) == ("paypal", "pay@acme.test")  # A4: replaced
    with live.db.session() as s:
        active = s.exec(select(PaymentMethod).where(PaymentMethod.active == True)).all()  # noqa: E712
        assert [m.kind for m in active] == ["paypal"]
        stored = [r.body or b"" for r in s.exec(select(IdempotencyRecord))]
    assert stored and all(VISA.encode() not in b for b in stored)
    for text in (response.text, replayed.text, paypal.text):
        assert VISA not in text and "tok_" not in text
    history = await live.env.client.get_workflow_handle(org_billing_workflow_id(OWN)).fetch_history()
    assert assert_no_secrets([history], {VISA}, {"123"}) > 0


async def test_reauthentication_collects_the_failed_sca_payment(live, keys):
    await live.env.sleep(FEB_1 - await live.env.get_current_time())
    owner = auth(keys[OWNER])
    assert (await live.api.post("/v1/payment-method", json=new_card(SCA), headers=owner)).status_code == 200
    invoice = closed_invoice(live.db, total="42.00")
    handle = await live.billing.charge_invoice(invoice.number)
    await wait_until_at_rest(live.env.client, [handle.id])
    assert (await handle.query(PaymentWorkflow.state)).status == "FAILED_AUTHENTICATION"
    response = await live.api.post("/v1/payment-method/reauthenticate", headers=owner)
    assert response.status_code == 200, response.text
    assert response.json() == {"authenticated": True, "retried": [invoice.number], "collected": 1,
                               "still_failed": []}
    assert (await handle.result()).status == "PAID"
    with live.db.session() as s:
        assert [p.status for p in s.exec(select(Payment).order_by(Payment.attempt))] == ["FAILED_AUTHENTICATION",
                                                                                          "PAID"]


async def test_reauthenticating_without_a_card_is_refused(live, keys):
    response = await live.api.post("/v1/payment-method/reauthenticate", headers=auth(keys[OWNER]))
    assert response.status_code == 409 and "no payment method" in response.json()["detail"]
