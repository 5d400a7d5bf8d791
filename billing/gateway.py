"""The payment gateway interface and the sandbox gateway that behaves by test card numbers (SCENARIOS.md)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from billing.cards import CardIn, PayPalIn
from billing.db import Database
from billing.money import round_money
from billing.tables import SandboxCharge, SandboxToken


class TokenizedMethod(BaseModel):
    """What the gateway gives back for a card or PayPal account: safe to store and to log."""

    token: str
    kind: str  # card | paypal
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    issuing_country: str | None = None
    paypal_email: str | None = None


class ChargeResult(BaseModel):
    charge_id: str
    succeeded: bool
    failure_code: str | None = None
    amount: Decimal
    currency: str


class IdempotencyConflict(Exception):
    """The same idempotency key was reused for a different request."""


class UnknownToken(Exception):
    pass


class PaymentGateway(Protocol):
    def tokenize_card(self, card: CardIn, at: datetime) -> TokenizedMethod: ...

    def tokenize_paypal(self, account: PayPalIn, at: datetime) -> TokenizedMethod: ...

    def authenticate(self, token: str) -> None: ...

    def charge(self, *, idempotency_key: str, token: str, amount: Decimal, currency: str,
               at: datetime) -> ChargeResult: ...

    def refund(self, *, idempotency_key: str, charge_id: str, at: datetime) -> ChargeResult: ...


@dataclass(frozen=True)
class _TestCard:
    behaviour: str
    issuing_country: str


# Behaviour by card number, as payment providers' test modes decide (SCENARIOS.md).
TEST_CARDS: dict[str, _TestCard] = {
    "4242424242424242": _TestCard("succeed", "US"),
    "5555555555554444": _TestCard("succeed", "US"),
    "378282246310005": _TestCard("succeed", "US"),
    "4000000000000002": _TestCard("card_declined", "US"),
    "4000000000009995": _TestCard("insufficient_funds", "US"),
    "4000002760003184": _TestCard("authentication_required", "DE"),
    "4000003560000123": _TestCard("india_mandate", "IN"),
}
_DEFAULT_CARD = _TestCard("succeed", "US")
VERIFICATION_AMOUNT = Decimal("1.00")  # SPEC A5: a 1.00 USD verification charge, refunded at once


class SandboxGateway:
    """A gateway with its own ledger (tables `sandbox_*`), so tests can count what it charged.

    Same idempotency key -> same result, never a second charge; the unique index on the key is
    what guarantees it even when two workers race.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def tokenize_card(self, card: CardIn, at: datetime) -> TokenizedMethod:
        test_card = TEST_CARDS.get(card.pan(), _DEFAULT_CARD)
        token = "tok_" + secrets.token_hex(12)
        with self.db.session() as s:
            s.add(SandboxToken(token=token, kind="card", behaviour=test_card.behaviour, brand=card.brand,
                               last4=card.last4, issuing_country=test_card.issuing_country, created_at=at))
        method = TokenizedMethod(token=token, kind="card", brand=card.brand, last4=card.last4,
                                 exp_month=card.exp_month, exp_year=card.exp_year,
                                 issuing_country=test_card.issuing_country)
        # SPEC A5: verify with 1.00 USD, refunded at once.
        verification = self.charge(idempotency_key=f"verify:{token}", token=token,
                                   amount=VERIFICATION_AMOUNT, currency="USD", at=at, verification=True)
        if verification.succeeded:
            self.refund(idempotency_key=f"verify-refund:{token}", charge_id=verification.charge_id, at=at)
        return method

    def tokenize_paypal(self, account: PayPalIn, at: datetime) -> TokenizedMethod:
        token = "tok_pp_" + secrets.token_hex(10)
        with self.db.session() as s:
            s.add(SandboxToken(token=token, kind="paypal", behaviour="succeed", created_at=at))
        return TokenizedMethod(token=token, kind="paypal", paypal_email=account.email)

    def authenticate(self, token: str) -> None:
        with self.db.session() as s:
            row = s.get(SandboxToken, token)
            if row is None:
                raise UnknownToken(token)
            row.authenticated = True
            s.add(row)

    def charge(self, *, idempotency_key: str, token: str, amount: Decimal, currency: str,
               at: datetime, verification: bool = False) -> ChargeResult:
        amount = round_money(Decimal(amount), currency)
        existing = self._by_key(idempotency_key)
        if existing is not None:
            return self._replay(existing, token=token, amount=amount, currency=currency)
        with self.db.session() as s:
            vault = s.get(SandboxToken, token)
            if vault is None:
                raise UnknownToken(token)
            failure = self._decide(vault, verification)
        row = SandboxCharge(id="ch_" + secrets.token_hex(12), idempotency_key=idempotency_key, token=token,
                            kind="charge", amount=amount, currency=currency,
                            outcome="failed" if failure else "succeeded", failure_code=failure, created_at=at)
        try:
            with self.db.session() as s:
                s.add(row)
        except IntegrityError:
            # Lost a race with a concurrent request carrying the same key: answer as it was answered.
            return self._replay(self._by_key(idempotency_key), token=token, amount=amount, currency=currency)
        return _result(row)

    def refund(self, *, idempotency_key: str, charge_id: str, at: datetime) -> ChargeResult:
        existing = self._by_key(idempotency_key)
        if existing is not None:
            return _result(existing)
        with self.db.session() as s:
            original = s.get(SandboxCharge, charge_id)
            if original is None or original.kind != "charge" or original.outcome != "succeeded":
                raise ValueError(f"charge {charge_id} cannot be refunded")
            row = SandboxCharge(id="re_" + secrets.token_hex(12), idempotency_key=idempotency_key,
                                token=original.token, kind="refund", amount=original.amount,
                                currency=original.currency, outcome="succeeded", refund_of=charge_id,
                                created_at=at)
            s.add(row)
        return _result(row)

    def charges(self, *, kind: str = "charge", outcome: str | None = "succeeded") -> list[SandboxCharge]:
        """The gateway's own ledger, for tests and reconciliation."""
        with self.db.session() as s:
            query = select(SandboxCharge).where(SandboxCharge.kind == kind)
            if outcome is not None:
                query = query.where(SandboxCharge.outcome == outcome)
            return list(s.exec(query.order_by(SandboxCharge.created_at)).all())

    @staticmethod
    def _decide(vault: SandboxToken, verification: bool) -> str | None:
        # The on-session verification of a new card passes for every test card; the test cards
        # decide what happens to the off-session charges that follow.
        if verification or vault.behaviour == "succeed":
            return None
        if vault.behaviour == "authentication_required":
            return None if vault.authenticated else "authentication_required"
        if vault.behaviour == "india_mandate":
            return "rbi_mandate_not_supported"  # the RBI mandate flow arrives with its own issue (E1-E6)
        return vault.behaviour

    def _by_key(self, key: str) -> SandboxCharge | None:
        with self.db.session() as s:
            return s.exec(select(SandboxCharge).where(SandboxCharge.idempotency_key == key)).first()

    @staticmethod
    def _replay(row: SandboxCharge, *, token: str, amount: Decimal, currency: str) -> ChargeResult:
        if row.token != token or row.amount != amount or row.currency != currency:
            raise IdempotencyConflict(f"idempotency key {row.idempotency_key} reused for a different charge")
        return _result(row)


def _result(row: SandboxCharge) -> ChargeResult:
    return ChargeResult(charge_id=row.id, succeeded=row.outcome == "succeeded", failure_code=row.failure_code,
                        amount=row.amount, currency=row.currency)
