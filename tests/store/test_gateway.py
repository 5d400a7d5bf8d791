"""The sandbox gateway: behaviour by test card, idempotency keys, its own ledger, no card numbers kept."""

from __future__ import annotations

from decimal import Decimal

import pytest

from store.gateway import IdempotencyConflict, SandboxGateway, UnknownToken
from tests.factories import AMEX, AT, DECLINED, INSUFFICIENT, SCA, VISA, card, paypal


@pytest.fixture
def gateway(db) -> SandboxGateway:
    return SandboxGateway(db)


def _charge(gateway: SandboxGateway, token: str, key: str = "INV-1:1", amount: str = "10.00"):
    return gateway.charge(idempotency_key=key, token=token, amount=Decimal(amount), currency="USD", at=AT)


@pytest.mark.parametrize("number, succeeded, failure", [
    (VISA, True, None), ("5555555555554444", True, None), (AMEX, True, None),
    (DECLINED, False, "card_declined"), (INSUFFICIENT, False, "insufficient_funds"),
    (SCA, False, "authentication_required"),
])
def test_test_cards_decide_the_outcome(gateway, number, succeeded, failure):
    token = gateway.tokenize_card(card(number), AT).token
    result = _charge(gateway, token)
    assert (result.succeeded, result.failure_code) == (succeeded, failure)


def test_sca_card_succeeds_once_authenticated(gateway):
    token = gateway.tokenize_card(card(SCA), AT).token
    assert _charge(gateway, token, key="a").failure_code == "authentication_required"
    gateway.authenticate(token)
    assert _charge(gateway, token, key="b").succeeded


def test_same_idempotency_key_same_result_one_charge(gateway):
    token = gateway.tokenize_card(card(), AT).token
    first = _charge(gateway, token)
    second = _charge(gateway, token)
    assert first == second
    assert len(gateway.charges()) == 1 + 1  # the charge, plus the 1.00 verification (A5)


def test_reusing_a_key_for_another_amount_is_refused(gateway):
    token = gateway.tokenize_card(card(), AT).token
    _charge(gateway, token)
    with pytest.raises(IdempotencyConflict):
        _charge(gateway, token, amount="11.00")


def test_adding_a_card_makes_a_refunded_verification_charge(gateway):
    gateway.tokenize_card(card(), AT)
    verification = [c for c in gateway.charges() if c.amount == Decimal("1.00")]
    refunds = gateway.charges(kind="refund")
    assert len(verification) == 1 and len(refunds) == 1
    assert refunds[0].refund_of == verification[0].id


def test_tokenization_keeps_brand_last4_and_country_never_the_number(gateway, db):
    method = gateway.tokenize_card(card(SCA), AT)
    assert (method.brand, method.last4, method.issuing_country) == ("visa", "3184", "DE")
    with db.engine.connect() as conn:
        dump = "\n".join(str(row) for table in ("sandbox_tokens", "sandbox_charges")
                         for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    assert SCA not in dump and SCA[:6] not in dump


def test_paypal_always_succeeds(gateway):
    token = gateway.tokenize_paypal(paypal(), AT).token
    assert _charge(gateway, token).succeeded


def test_unknown_token_is_refused(gateway):
    with pytest.raises(UnknownToken):
        _charge(gateway, "tok_missing")
