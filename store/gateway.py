"""The payment gateway interface and the sandbox gateway that behaves by test card numbers (SCENARIOS.md)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from billing import webhooks
from billing.cards import CardIn, PayPalIn, TokenizedMethod
from store.db import Database
from billing.money import round_money
from store.tables import SandboxCharge, SandboxMandate, SandboxToken


class ChargeResult(BaseModel):
    charge_id: str
    succeeded: bool
    failure_code: str | None = None
    amount: Decimal
    currency: str
    processing: bool = False  # India (RBI): the issuer settles later and says so by webhook (E3-E4)
    requires_authorization: bool = False  # above INR 15,000 the customer must authorize (E4)
    by_webhook: bool = False  # the issuer's outcome is also POSTed as a webhook (an India charge, even once settled)


class MandateResult(BaseModel):
    mandate_id: str
    limit: Decimal
    currency: str


class WebhookEvent(BaseModel):
    """What the gateway POSTs to us when an issuer settles a charge, signed with Standard Webhooks (SPEC I5)."""

    id: str  # also the `webhook-id` header: the same on every delivery of this outcome
    type: str  # charge.succeeded | charge.failed
    charge_id: str
    idempotency_key: str
    failure_code: str | None = None
    at: datetime


class SignedWebhook(BaseModel):
    """A webhook ready to send: its body and the three Standard Webhooks headers."""

    charge_id: str
    body: bytes
    headers: dict[str, str]


WEBHOOK_SECRET_ENV = "BILLING_WEBHOOK_SECRET"  # shared by the gateway and our endpoint (`whsec_…`)
_DEV_WEBHOOK_SECRET = "billing-dev-webhook-secret"


def gateway_webhook_secret() -> str:
    """The secret the gateway signs its webhooks with and our endpoint verifies them with."""
    return webhooks.secret_from_text(os.environ.get(WEBHOOK_SECRET_ENV, _DEV_WEBHOOK_SECRET))


def sign_webhook(event: WebhookEvent, at: datetime) -> SignedWebhook:
    """The sandbox gateway signs as a real one does: Standard Webhooks headers, timestamped at sending."""
    body = event.model_dump_json().encode()
    return SignedWebhook(charge_id=event.charge_id, body=body,
                         headers=webhooks.sign(gateway_webhook_secret(), event.id, at, body))


class IdempotencyConflict(Exception):
    """The same idempotency key was reused for a different request."""


class UnknownToken(Exception):
    pass


class GatewayUnavailable(Exception):
    """No answer from the gateway (a timeout, a refused connection, a 5xx): the request may or may not have been
    carried out. Retried with the same idempotency key after asking the gateway what became of it (M3)."""


class PaymentGateway(Protocol):
    def tokenize_card(self, card: CardIn, at: datetime) -> TokenizedMethod: ...

    def tokenize_paypal(self, account: PayPalIn, at: datetime) -> TokenizedMethod: ...

    def authenticate(self, token: str) -> None: ...

    def charge(self, *, idempotency_key: str, token: str, amount: Decimal, currency: str,
               at: datetime, usd_amount: Decimal | None = None, on_session: bool = False) -> ChargeResult: ...

    def charge_by_key(self, idempotency_key: str) -> ChargeResult | None:
        """The charge or refund made under this key, or None when the gateway has none (it was never made)."""
        ...

    def refund(self, *, idempotency_key: str, charge_id: str, at: datetime) -> ChargeResult: ...

    def register_mandate(self, *, token: str, limit: Decimal, currency: str, at: datetime) -> MandateResult: ...

    def revoke_mandate(self, *, mandate_id: str, at: datetime) -> None: ...

    def authorize(self, *, charge_id: str, at: datetime) -> None: ...

    def cancel(self, *, charge_id: str, at: datetime) -> None: ...

    def next_webhook_at(self) -> datetime | None: ...

    def due_webhooks(self, now: datetime) -> list[SignedWebhook]: ...

    def webhook_delivered(self, charge_id: str) -> None: ...


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
RBI_AUTHORIZATION_THRESHOLD = Decimal("15000")  # INR: above it the customer must authorize (SPEC E4)


LEDGER_TABLES = [SandboxToken.__table__, SandboxMandate.__table__, SandboxCharge.__table__]


def create_ledger(db: Database) -> None:
    """The gateway service's own database: only its ledger tables (the billing database has them through its
    migrations, for the in-process gateway)."""
    SandboxCharge.metadata.create_all(db.engine, tables=LEDGER_TABLES)


class SandboxGateway:
    """A gateway with its own ledger (tables `sandbox_*`), so tests can count what it charged.

    Same idempotency key -> same result, never a second charge; the unique index on the key is
    what guarantees it even when two workers race.
    """

    def __init__(self, db: Database, rbi_processing: timedelta = timedelta(days=3)) -> None:
        self.db = db
        self.rbi_processing = rbi_processing  # how long India's issuers keep a charge PROCESSING (E4)

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
               at: datetime, verification: bool = False, usd_amount: Decimal | None = None,
               on_session: bool = False) -> ChargeResult:
        """`on_session`: the customer is present (PAY NOW) and authenticates with the issuer in the session, so
        neither an RBI mandate (E2) nor SCA (F1) stands in the way; the issuer's own decline still does."""
        amount = round_money(Decimal(amount), currency)
        existing = self._by_key(idempotency_key)
        if existing is not None:
            return self._replay(existing, token=token, amount=amount, currency=currency)
        with self.db.session() as s:
            vault = s.get(SandboxToken, token)
            if vault is None:
                raise UnknownToken(token)
            if vault.behaviour == "india_mandate" and not verification and not on_session:
                row = self._rbi_charge(s, idempotency_key, token, amount, currency, at, usd_amount)
            else:
                failure = self._decide(vault, verification, on_session)
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

    def _rbi_charge(self, s, idempotency_key: str, token: str, amount: Decimal, currency: str, at: datetime,
                    usd_amount: Decimal | None) -> SandboxCharge:
        """SPEC E2-E5: a recurring charge needs an active mandate with room under its monthly cap; it then
        stays processing until the issuer settles it."""
        base = {"id": "ch_" + secrets.token_hex(12), "idempotency_key": idempotency_key, "token": token,
                "kind": "charge", "amount": amount, "currency": currency, "created_at": at, "usd_amount": usd_amount}
        mandate = s.exec(select(SandboxMandate).where(SandboxMandate.token == token)
                         .order_by(SandboxMandate.created_at.desc())).first()
        if mandate is None or mandate.status != "ACTIVE":
            return SandboxCharge(**base, outcome="failed", failure_code="mandate_revoked" if mandate else "no_mandate")
        month_start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        used = sum((c.usd_amount or Decimal(0)) for c in s.exec(select(SandboxCharge).where(
            SandboxCharge.mandate_id == mandate.id, SandboxCharge.created_at >= month_start,
            SandboxCharge.outcome.in_(["processing", "succeeded"]))))
        if usd_amount is None or used + usd_amount > mandate.limit_usd:
            return SandboxCharge(**base, outcome="failed", failure_code="mandate_limit_exceeded")
        return SandboxCharge(**base, outcome="processing", mandate_id=mandate.id, settles_at=at + self.rbi_processing,
                             requires_authorization=currency == "INR" and amount > RBI_AUTHORIZATION_THRESHOLD)

    def register_mandate(self, *, token: str, limit: Decimal, currency: str, at: datetime) -> MandateResult:
        """SPEC E1: the issuer verifies the customer and registers a recurring-payment mandate."""
        with self.db.session() as s:
            vault = s.get(SandboxToken, token)
            if vault is None:
                raise UnknownToken(token)
            if vault.behaviour != "india_mandate":
                raise ValueError("mandates are for India-issued cards")
            mandate = SandboxMandate(id="md_" + secrets.token_hex(10), token=token, limit_usd=limit, created_at=at)
            s.add(mandate)
        return MandateResult(mandate_id=mandate.id, limit=limit, currency=currency)

    def revoke_mandate(self, *, mandate_id: str, at: datetime) -> None:
        """The customer revokes the mandate at their bank (E5)."""
        with self.db.session() as s:
            mandate = s.get(SandboxMandate, mandate_id)
            if mandate is not None and mandate.status == "ACTIVE":
                mandate.status, mandate.revoked_at = "REVOKED", at
                s.add(mandate)

    def authorize(self, *, charge_id: str, at: datetime) -> None:
        """The customer authorized a charge above INR 15,000 through the issuer's link (E4)."""
        with self.db.session() as s:
            charge = s.get(SandboxCharge, charge_id)
            if charge is not None and charge.outcome == "processing" and charge.authorized_at is None:
                charge.authorized_at = at
                s.add(charge)

    def cancel(self, *, charge_id: str, at: datetime) -> None:
        """Withdraw a charge that can no longer go through (no authorization in time)."""
        with self.db.session() as s:
            charge = s.get(SandboxCharge, charge_id)
            if charge is not None and charge.outcome == "processing":
                charge.outcome, charge.failure_code, charge.webhook_sent = "failed", "authorization_missing", True
                s.add(charge)

    def next_webhook_at(self) -> datetime | None:
        """When the sandbox issuer next has a webhook to send: a processing charge settling, or an outcome not yet
        acknowledged by our endpoint (then it is due at once)."""
        with self.db.session() as s:
            times = [self._settle_time(c) for c in self._pending(s) + self._unsent(s)]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def due_webhooks(self, now: datetime) -> list[SignedWebhook]:
        """Settle what is due and return every outcome not yet acknowledged, signed at `now`. A webhook is sent
        again (same id) until `webhook_delivered` records that our endpoint took it: at least once, as gateways do."""
        with self.db.session() as s:
            for charge in self._pending(s):
                when = self._settle_time(charge)
                if when is None or when > now:
                    continue
                mandate = s.get(SandboxMandate, charge.mandate_id)
                succeeded = mandate is not None and mandate.status == "ACTIVE"
                charge.outcome = "succeeded" if succeeded else "failed"
                charge.failure_code = None if succeeded else "mandate_revoked"
                s.add(charge)
            s.flush()
            events = [WebhookEvent(id=f"evt_{charge.id.removeprefix('ch_')}",
                                   type="charge.succeeded" if charge.outcome == "succeeded" else "charge.failed",
                                   charge_id=charge.id, idempotency_key=charge.idempotency_key,
                                   failure_code=charge.failure_code, at=self._settle_time(charge))
                      for charge in self._unsent(s)]
        return [sign_webhook(event, now) for event in events]

    def webhook_delivered(self, charge_id: str) -> None:
        """Our endpoint answered the charge's webhook (accepted, or already received): stop sending it."""
        with self.db.session() as s:
            charge = s.get(SandboxCharge, charge_id)
            if charge is not None and not charge.webhook_sent:
                charge.webhook_sent = True
                s.add(charge)

    @staticmethod
    def _pending(s) -> list[SandboxCharge]:
        return list(s.exec(select(SandboxCharge).where(SandboxCharge.outcome == "processing",
                                                       SandboxCharge.webhook_sent == False)))  # noqa: E712

    @staticmethod
    def _unsent(s) -> list[SandboxCharge]:
        """Charges the issuer settled whose webhook our endpoint has not acknowledged (only processing charges have
        `settles_at`; a withdrawn one is marked sent)."""
        return list(s.exec(select(SandboxCharge).where(SandboxCharge.settles_at.is_not(None),
                                                       SandboxCharge.outcome.in_(["succeeded", "failed"]),
                                                       SandboxCharge.webhook_sent == False)  # noqa: E712
                           .order_by(SandboxCharge.created_at, SandboxCharge.id)))

    @staticmethod
    def _settle_time(charge: SandboxCharge) -> datetime | None:
        if charge.requires_authorization and charge.authorized_at is None:
            return None  # the issuer waits for the customer; our workflow decides when to give up
        return max(charge.settles_at, charge.authorized_at or charge.settles_at)

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
    def _decide(vault: SandboxToken, verification: bool, on_session: bool = False) -> str | None:
        # The on-session verification of a new card passes for every test card; the test cards
        # decide what happens to the off-session charges that follow.
        if verification or vault.behaviour in ("succeed", "india_mandate"):
            return None
        if vault.behaviour == "authentication_required":
            return None if vault.authenticated or on_session else "authentication_required"
        return vault.behaviour

    def charge_by_key(self, idempotency_key: str) -> ChargeResult | None:
        row = self._by_key(idempotency_key)
        return None if row is None else _result(row)

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
                        amount=round_money(row.amount, row.currency), currency=row.currency, processing=row.outcome == "processing",
                        requires_authorization=row.requires_authorization, by_webhook=row.settles_at is not None)
