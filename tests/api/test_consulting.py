"""Buying Flex Consulting through the API (SPEC B3), step by step: level -> billing address -> payment method ->
review -> confirm; the consulting invoice is paid through its payment workflow."""

from __future__ import annotations

import pytest
from sqlmodel import select

from billing.permissions import ApiRole
from contracts.flows import checkout_workflow_id
from store.tables import EmailMessage, Invoice, Payment, PaymentMethod, SandboxCharge, SandboxToken
from tests.api.conftest import OTHER, OWN, auth
from tests.api.live import live  # noqa: F401  (fixture)
from tests.factories import VISA
from tests.leaks import assert_no_secrets

pytestmark = pytest.mark.asyncio

OWNER, ADMIN, READER = ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN, ApiRole.ORGANIZATION_READ_ONLY
DUBLIN = {"country": "IE", "state": "Dublin", "city": "Dublin", "address_line1": "1 Grand Canal Sq",
          "postal_code": "D02 P820", "company_name": "Acme Ireland"}
CARD = {"type": "card", "number": VISA, "exp": "12/30", "cvc": "123", "name": "Ada Lovelace"}


async def test_checkout_routes_refuse_what_they_must(api, keys):
    order = {"level": "standard", "price": "5000.00"}
    assert (await api.post("/v1/consulting/checkouts", json=order)).status_code == 401
    assert (await api.post("/v1/consulting/checkouts", json=order, headers=auth(keys[READER]))).status_code == 403
    assert (await api.post("/v1/consulting/checkouts", json=order, params={"org": OWN},
                           headers=auth(keys.other_org_owner))).status_code == 404
    invalid = await api.post("/v1/consulting/checkouts", json={"level": "", "price": 5000.0},
                             headers=auth(keys[OWNER]))
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"body.level", "body.price"}
    assert (await api.post("/v1/consulting/checkouts", json={"level": "standard", "price": "-1"},
                           headers=auth(keys[OWNER]))).json()["errors"][0]["field"] == "body.price"
    # A purchase ID of another form never names a checkout (checkout-<org>-<purchase> must name one organization's).
    assert (await api.get("/v1/consulting/checkouts/globex-x", headers=auth(keys[OWNER]))).status_code == 404
    bad_card = await api.post("/v1/consulting/checkouts/abc/payment-method",
                              json={"method": {**CARD, "number": "4242424242424241"}}, headers=auth(keys[OWNER]))
    assert bad_card.status_code == 422 and "4242424242424241" not in bad_card.text
    for step in ("review", "confirm"):
        assert (await api.post(f"/v1/consulting/checkouts/abc/{step}", headers=auth(keys[READER]))).status_code == 403


async def test_a_checkout_step_by_step_is_confirmed_and_paid(live, keys):
    admin = auth(keys[ADMIN])
    opened = await live.api.post("/v1/consulting/checkouts", json={"level": "standard", "price": "5000.00"},
                                 headers=admin)
    assert opened.status_code == 201, opened.text
    checkout = opened.json()
    path = f"/v1/consulting/checkouts/{checkout['id']}"
    assert (checkout["step"], checkout["level"], checkout["price"]) == ("ADDRESS", "standard", "5000.00")
    early = await live.api.post(f"{path}/confirm", headers=admin)
    assert early.status_code == 409 and "review the cart" in early.json()["detail"]
    invalid = await live.api.post(f"{path}/address", json={"address": {**DUBLIN, "country": "XX"}}, headers=admin)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.address.country"
    no_method = await live.api.post(f"{path}/address", json={}, headers=admin)  # the profile on file (A4)
    assert no_method.json()["address"] == {"country": "US", "state": "NY", "tax_id": None}
    refused = await live.api.post(f"{path}/payment-method", json={}, headers=admin)
    assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "body.method"
    addressed = await live.api.post(f"{path}/address", json={"address": DUBLIN}, headers=admin)
    assert addressed.json()["step"] == "PAYMENT_METHOD"
    method = await live.api.post(f"{path}/payment-method", json={"method": CARD}, headers=admin)
    assert method.status_code == 200, method.text
    assert method.json()["method"]["last4"] == "4242" and VISA not in method.text and "tok_" not in method.text
    assert method.json()["step"] == "REVIEW"  # acme has no method on file: the card given here pays (B3)
    cart = (await live.api.post(f"{path}/review", headers=admin)).json()["cart"]
    assert (cart["price"], cart["tax"], cart["total"]) == ("5000.00", "1150.00", "6150.00")  # C3: Irish VAT
    assert [line["name"] for line in cart["tax_lines"]] == ["VAT"]
    confirmed = await live.api.post(f"{path}/confirm", headers=admin)
    assert confirmed.status_code == 200 and confirmed.json()["step"] == "CONFIRMED"
    handle = live.env.client.get_workflow_handle(checkout_workflow_id(OWN, checkout["id"]))
    await handle.result()
    done = (await live.api.get(path, headers=auth(keys[READER]))).json()
    assert (done["step"], done["payment_status"]) == ("PAID", "PAID")
    with live.db.session() as s:
        invoice = s.exec(select(Invoice).where(Invoice.number == done["invoice"])).one()
        kinds = [m.kind for m in s.exec(select(EmailMessage).where(EmailMessage.org_id == OWN))]
    assert (invoice.kind, invoice.status, invoice.org_id) == ("consulting", "PAID", OWN)
    with live.db.session() as s:
        [payment] = s.exec(select(Payment).where(Payment.invoice_id == invoice.id)).all()
        charged = s.get(PaymentMethod, payment.payment_method_id)
    assert (charged.last4, charged.active) == ("4242", False)  # the checkout's card, not put on file
    assert "consulting_confirmation" in kinds
    after = await live.api.post(f"{path}/confirm", headers=admin)
    assert after.status_code == 409 and "paid" in after.json()["detail"]
    assert (await live.api.get(path, params={"org": OWN}, headers=auth(keys.other_org_owner))).status_code == 404
    assert (await live.api.get(path, headers=auth(keys.other_org_owner))).status_code == 404  # globex has none
    assert (await live.api.get(path, params={"org": OTHER},
                               headers=auth(keys[ApiRole.OPERATOR]))).status_code == 404
    assert assert_no_secrets([await handle.fetch_history()], {VISA}, {"123"}) > 0


async def test_a_checkout_refuses_a_bad_card_and_charges_nothing(live, keys):
    """B3/A5: a card that fails A5 at the checkout's payment step is refused, naming the field; the checkout stays
    at that step, cannot be confirmed, and nothing reaches the gateway, the invoices or the payments."""
    admin = auth(keys[ADMIN])
    checkout = (await live.api.post("/v1/consulting/checkouts", json={"level": "standard", "price": "5000.00"},
                                    headers=admin)).json()
    path = f"/v1/consulting/checkouts/{checkout['id']}"
    assert (await live.api.post(f"{path}/address", json={"address": DUBLIN}, headers=admin)).status_code == 200
    with live.db.session() as s:
        tokens_before = len(s.exec(select(SandboxToken)).all())
    for bad, field in (({**CARD, "number": "4242424242424241"}, "number"),  # fails Luhn
                       ({**CARD, "exp": "01/20"}, "exp"),  # expired
                       ({**CARD, "cvc": "12"}, "cvc")):
        refused = await live.api.post(f"{path}/payment-method", json={"method": bad}, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].endswith(field)
        assert "4242424242424241" not in refused.text
    state = (await live.api.get(path, headers=admin)).json()
    assert (state["step"], state["method"]) == ("PAYMENT_METHOD", None)
    assert (await live.api.post(f"{path}/review", headers=admin)).status_code == 409
    assert (await live.api.post(f"{path}/confirm", headers=admin)).status_code == 409
    with live.db.session() as s:
        assert len(s.exec(select(SandboxToken)).all()) == tokens_before  # nothing tokenized
        assert s.exec(select(SandboxCharge)).all() == []
        assert s.exec(select(Invoice).where(Invoice.kind == "consulting")).all() == []
        assert s.exec(select(Payment)).all() == []
