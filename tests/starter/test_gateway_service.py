"""The sandbox gateway as its own HTTP service (`billing gateway serve`) through HttpGateway: idempotency keys honoured
by the service (M3), the test cards of SCENARIOS.md, India's signed webhooks (I5), each fault mode, and the charge
activity's lookup by key after a timeout that came after the charge (exactly one charge in the ledger)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.payments import PaymentActivities
from billing import webhooks
from contracts.payments import ChargeRequest
from store.gateway import GatewayUnavailable, IdempotencyConflict, UnknownToken, WebhookEvent, gateway_webhook_secret
from store.gateway_http import HttpGateway
from store.tables import Invoice, Payment, PaymentMethod
from tests.conftest import start_gateway_service
from tests.factories import AT, DECLINED, INSUFFICIENT, SCA, VISA, card, closed_invoice, org_with_method, paypal

INDIA = "4000003560000123"


@pytest.fixture
def gateway(gateway_service):
    client = HttpGateway(gateway_service.url, timeout=5.0)
    yield client
    client.close()


def _key() -> str:
    return f"test:{uuid.uuid4()}"


def test_same_key_same_request_answers_the_first_charge_and_another_request_conflicts(gateway):
    token = gateway.tokenize_card(card(VISA), AT).token
    key = _key()
    first = gateway.charge(idempotency_key=key, token=token, amount=Decimal("10.00"), currency="USD", at=AT)
    again = gateway.charge(idempotency_key=key, token=token, amount=Decimal("10.00"), currency="USD", at=AT)
    assert first.succeeded and again == first and first.amount == Decimal("10.00")
    with pytest.raises(IdempotencyConflict):
        gateway.charge(idempotency_key=key, token=token, amount=Decimal("11.00"), currency="USD", at=AT)
    assert gateway.charge_by_key(key) == first
    assert gateway.charge_by_key(_key()) is None
    assert [c.id for c in gateway.charges() if c.idempotency_key == key] == [first.charge_id]


def test_test_cards_decide_the_outcome(gateway):
    outcomes = {}
    for number in (VISA, DECLINED, INSUFFICIENT, SCA):
        token = gateway.tokenize_card(card(number), AT).token
        result = gateway.charge(idempotency_key=_key(), token=token, amount=Decimal("5.00"), currency="USD", at=AT)
        outcomes[number] = (result.succeeded, result.failure_code)
    assert outcomes == {VISA: (True, None), DECLINED: (False, "card_declined"),
                        INSUFFICIENT: (False, "insufficient_funds"), SCA: (False, "authentication_required")}
    sca = gateway.tokenize_card(card(SCA), AT)
    assert sca.issuing_country == "DE" and sca.last4 == "3184"
    gateway.authenticate(sca.token)
    assert gateway.charge(idempotency_key=_key(), token=sca.token, amount=Decimal("5.00"), currency="USD",
                          at=AT).succeeded
    pp = gateway.tokenize_paypal(paypal(), AT).token
    assert gateway.charge(idempotency_key=_key(), token=pp, amount=Decimal("5.00"), currency="EUR", at=AT).succeeded
    with pytest.raises(UnknownToken):
        gateway.charge(idempotency_key=_key(), token="tok_nobody", amount=Decimal("5.00"), currency="USD", at=AT)


def test_refund_is_idempotent(gateway):
    token = gateway.tokenize_card(card(VISA), AT).token
    charged = gateway.charge(idempotency_key=_key(), token=token, amount=Decimal("7.50"), currency="USD", at=AT)
    key = _key()
    refund = gateway.refund(idempotency_key=key, charge_id=charged.charge_id, at=AT)
    assert refund.succeeded and refund.amount == Decimal("7.50")
    assert gateway.refund(idempotency_key=key, charge_id=charged.charge_id, at=AT) == refund
    assert [r.refund_of for r in gateway.charges(kind="refund") if r.idempotency_key == key] == [charged.charge_id]


def test_india_charge_processes_then_a_signed_webhook_is_due_on_the_callers_clock(gateway):
    token = gateway.tokenize_card(card(INDIA), AT).token
    mandate = gateway.register_mandate(token=token, limit=Decimal("1000"), currency="USD", at=AT)
    key = _key()
    charged = gateway.charge(idempotency_key=key, token=token, amount=Decimal("4160.00"), currency="INR", at=AT,
                             usd_amount=Decimal("50.00"))
    assert charged.processing and not charged.requires_authorization and mandate.mandate_id.startswith("md_")
    settles = AT + timedelta(days=3)  # the service's default issuer notice (BILLING_RBI_PROCESSING)
    assert gateway.next_webhook_at() <= settles
    mine = [w for w in gateway.due_webhooks(settles) if w.charge_id == charged.charge_id]
    assert len(mine) == 1
    webhooks.verify(gateway_webhook_secret(), mine[0].body, mine[0].headers, settles)
    event = WebhookEvent.model_validate_json(mine[0].body)
    assert (event.type, event.idempotency_key) == ("charge.succeeded", key)
    gateway.webhook_delivered(charged.charge_id)
    assert charged.charge_id not in [w.charge_id for w in gateway.due_webhooks(settles)]
    assert gateway.charge_by_key(key).succeeded


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """One service per fault mode, every charge and refund hit (share 1); started on first use."""
    servers = {}

    def start(kind: str):
        if kind not in servers:
            servers[kind] = start_gateway_service(tmp_path_factory.mktemp(kind) / "gateway.db",
                                                  faults=f"{kind}=1,hang=1.5,slow_seconds=0.4")
        return servers[kind]
    yield start
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize("kind, charged", [("error_500", False), ("timeout_before", False), ("timeout_after", True)])
def test_a_fault_leaves_the_outcome_unknown_and_the_lookup_by_key_tells_it(faulty, kind, charged):
    server = faulty(kind)
    gateway = HttpGateway(server.url, timeout=0.8)
    try:
        token = gateway.tokenize_card(card(VISA), AT).token  # tokenization is not hit: it moves no money
        key = _key()
        with pytest.raises(GatewayUnavailable):
            gateway.charge(idempotency_key=key, token=token, amount=Decimal("3.00"), currency="USD", at=AT)
        found = gateway.charge_by_key(key)
        assert (found is not None) is charged
        if charged:
            assert found.succeeded and found.amount == Decimal("3.00")
        assert len([c for c in gateway.charges(outcome=None) if c.idempotency_key == key]) == int(charged)
        assert gateway.faults()[kind] == 1
    finally:
        gateway.close()


def test_a_slow_answer_within_the_timeout_is_an_answer(faulty):
    gateway = HttpGateway(faulty("slow").url, timeout=5.0)
    try:
        token = gateway.tokenize_card(card(VISA), AT).token
        started = time.monotonic()
        result = gateway.charge(idempotency_key=_key(), token=token, amount=Decimal("3.00"), currency="USD", at=AT)
        assert result.succeeded and time.monotonic() - started >= 0.4
        assert gateway.faults()["slow"] == 1
    finally:
        gateway.close()


def test_charge_activity_after_a_timeout_after_charging_finds_the_charge_by_key_and_charges_once(faulty, db):
    """Kill Bill's Janitor: the first execution hears nothing back although the gateway charged; the retry asks
    the gateway for the key, finds the charge and records it: one charge in the ledger, the payment PAID."""
    gateway = HttpGateway(faulty("timeout_after").url, timeout=0.8)
    try:
        org_with_method(db, gateway, card(VISA))
        invoice = closed_invoice(db)
        request = ChargeRequest(org_id="acme", invoice_id=invoice.id, invoice_number=invoice.number, attempt=1,
                                idempotency_key=f"{invoice.number}:{uuid.uuid4()}", amount=Decimal("59.52"),
                                currency="USD", at=AT)
        activities = PaymentActivities(db, gateway)
        env = ActivityEnvironment()
        with pytest.raises(ApplicationError) as lost:
            env.run(activities.charge_payment, request)
        assert lost.value.type == "GatewayUnavailable" and not lost.value.non_retryable
        outcome = env.run(activities.charge_payment, request)  # what Temporal's retry does
        assert outcome.status == "PAID"
        ledger = [c for c in gateway.charges(outcome=None) if c.idempotency_key == request.idempotency_key]
        assert len(ledger) == 1 and ledger[0].id == outcome.charge_id and ledger[0].outcome == "succeeded"
        with db.session() as s:
            [payment] = s.exec(select(Payment)).all()
            assert (payment.status, payment.gateway_charge_id) == ("PAID", outcome.charge_id)
    finally:
        gateway.close()


def test_an_india_charge_found_settled_by_key_waits_for_the_issuers_webhook(faulty, db):
    """The lookup after a timeout finds an India charge the issuer has meanwhile settled: the payment is recorded
    PROCESSING with the charge's id, and its outcome comes from the webhook (E3-E4), never from the lookup, which
    would count INR against a USD invoice."""
    gateway = HttpGateway(faulty("timeout_after").url, timeout=0.8)
    try:
        org_with_method(db, gateway, card(INDIA))
        with db.session() as s:
            token = s.exec(select(PaymentMethod.token)).one()
        gateway.register_mandate(token=token, limit=Decimal("1400"), currency="USD", at=AT)
        invoice = closed_invoice(db)
        request = ChargeRequest(org_id="acme", invoice_id=invoice.id, invoice_number=invoice.number, attempt=1,
                                idempotency_key=f"{invoice.number}:{uuid.uuid4()}", amount=Decimal("59.52"),
                                currency="USD", charge_currency="INR", fx_rate=Decimal("83.20"), at=AT)
        activities = PaymentActivities(db, gateway)
        env = ActivityEnvironment()
        with pytest.raises(ApplicationError):
            env.run(activities.charge_payment, request)
        gateway.due_webhooks(AT + timedelta(days=3))  # the issuer settles it meanwhile
        assert gateway.charge_by_key(request.idempotency_key).succeeded
        outcome = env.run(activities.charge_payment, request)
        assert (outcome.status, outcome.currency, outcome.amount) == ("PROCESSING", "INR", Decimal("4952.06"))
        with db.session() as s:
            assert s.get(Invoice, invoice.id).amount_due == Decimal("59.52")
    finally:
        gateway.close()
