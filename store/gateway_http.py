"""The client of the sandbox gateway service (`billing gateway serve`): the same PaymentGateway over HTTP.

Money goes over the wire as decimal strings (SPEC M1). Idempotency keys travel in the `Idempotency-Key` header
and are honoured by the service (M3). Whatever leaves the outcome of a request unknown (a timeout, a refused
connection, a 5xx) raises GatewayUnavailable; the charge activity then asks the service for the charge by its key
before it charges again.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel

from billing.cards import CardIn, PayPalIn, TokenizedMethod
from store.db import Database
from store.gateway import (ChargeResult, GatewayUnavailable, IdempotencyConflict, MandateResult, PaymentGateway,
                           SandboxGateway, SignedWebhook, UnknownToken)

GATEWAY_URL_ENV = "BILLING_GATEWAY_URL"
GATEWAY_TIMEOUT_ENV = "BILLING_GATEWAY_TIMEOUT"  # seconds; each request's whole budget
DEFAULT_TIMEOUT = 10.0


class CardTokenRequest(BaseModel):
    number: str
    exp: str
    cvc: str
    name: str
    at: datetime


class PayPalTokenRequest(BaseModel):
    email: str
    at: datetime


class ChargeRequestBody(BaseModel):
    token: str
    amount: Decimal
    currency: str
    at: datetime
    usd_amount: Decimal | None = None
    on_session: bool = False


class RefundRequestBody(BaseModel):
    charge_id: str
    at: datetime


class MandateRequestBody(BaseModel):
    token: str
    limit: Decimal
    currency: str
    at: datetime


class At(BaseModel):
    at: datetime


class LedgerEntry(BaseModel):
    """One row of the gateway's ledger, as the service lists it for reconciliation and tests."""

    id: str
    idempotency_key: str
    token: str
    kind: str
    amount: Decimal
    currency: str
    outcome: str
    failure_code: str | None = None
    refund_of: str | None = None
    created_at: datetime
    settles_at: datetime | None = None


class WireWebhook(BaseModel):
    """A signed webhook handed to a caller that delivers it itself (the simulator, on its own clock)."""

    charge_id: str
    body: str
    headers: dict[str, str]


class HttpGateway:
    """PaymentGateway over HTTP: one service, one ledger (a simulation starts a service of its own)."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        if timeout is None:
            timeout = float(os.environ.get(GATEWAY_TIMEOUT_ENV, DEFAULT_TIMEOUT))
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, *, body: BaseModel | None = None, key: str | None = None,
              params: dict[str, Any] | None = None, missing_ok: bool = False) -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        content = body.model_dump_json() if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = self.http.request(method, path, content=content, headers=headers, params=params)
        except httpx.HTTPError as err:  # timeouts, refused or reset connections: the outcome is unknown
            raise GatewayUnavailable(f"{method} {path}: {type(err).__name__}: {err}") from err
        if answer.status_code >= 500:
            raise GatewayUnavailable(f"{method} {path}: HTTP {answer.status_code}")
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.status_code == 409:
            raise IdempotencyConflict(_detail(answer))
        if answer.status_code == 404:
            raise UnknownToken(_detail(answer))
        if answer.status_code >= 400:
            raise ValueError(_detail(answer))
        return answer.json() if answer.content else None

    def health(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def tokenize_card(self, card: CardIn, at: datetime) -> TokenizedMethod:
        # The number and CVC go to the gateway, and nowhere else (A6).
        body = CardTokenRequest(number=card.pan(), exp=card.exp, cvc=card.cvc.get_secret_value(), name=card.name,
                                at=at)
        return TokenizedMethod.model_validate(self._call("POST", "/v1/tokens/card", body=body))

    def tokenize_paypal(self, account: PayPalIn, at: datetime) -> TokenizedMethod:
        return TokenizedMethod.model_validate(self._call("POST", "/v1/tokens/paypal",
                                                         body=PayPalTokenRequest(email=account.email, at=at)))

    def authenticate(self, token: str) -> None:
        self._call("POST", f"/v1/tokens/{token}/authenticate")

    def charge(self, *, idempotency_key: str, token: str, amount: Decimal, currency: str, at: datetime,
               usd_amount: Decimal | None = None, on_session: bool = False) -> ChargeResult:
        body = ChargeRequestBody(token=token, amount=amount, currency=currency, at=at, usd_amount=usd_amount,
                                 on_session=on_session)
        return ChargeResult.model_validate(self._call("POST", "/v1/charges", body=body, key=idempotency_key))

    def charge_by_key(self, idempotency_key: str) -> ChargeResult | None:
        found = self._call("GET", "/v1/charges", params={"idempotency_key": idempotency_key}, missing_ok=True)
        return None if found is None else ChargeResult.model_validate(found)

    def refund(self, *, idempotency_key: str, charge_id: str, at: datetime) -> ChargeResult:
        return ChargeResult.model_validate(self._call("POST", "/v1/refunds", key=idempotency_key,
                                                      body=RefundRequestBody(charge_id=charge_id, at=at)))

    def register_mandate(self, *, token: str, limit: Decimal, currency: str, at: datetime) -> MandateResult:
        body = MandateRequestBody(token=token, limit=limit, currency=currency, at=at)
        return MandateResult.model_validate(self._call("POST", "/v1/mandates", body=body))

    def revoke_mandate(self, *, mandate_id: str, at: datetime) -> None:
        self._call("POST", f"/v1/mandates/{mandate_id}/revoke", body=At(at=at))

    def authorize(self, *, charge_id: str, at: datetime) -> None:
        self._call("POST", f"/v1/charges/{charge_id}/authorize", body=At(at=at))

    def cancel(self, *, charge_id: str, at: datetime) -> None:
        self._call("POST", f"/v1/charges/{charge_id}/cancel", body=At(at=at))

    def next_webhook_at(self) -> datetime | None:
        at = self._call("GET", "/v1/webhooks/next")["at"]
        return None if at is None else datetime.fromisoformat(at)

    def due_webhooks(self, now: datetime) -> list[SignedWebhook]:
        due = self._call("POST", "/v1/webhooks/due", body=At(at=now))
        return [SignedWebhook(charge_id=w["charge_id"], body=w["body"].encode(), headers=w["headers"]) for w in due]

    def webhook_delivered(self, charge_id: str) -> None:
        self._call("POST", f"/v1/webhooks/{charge_id}/delivered")

    def charges(self, *, kind: str = "charge", outcome: str | None = "succeeded") -> list[LedgerEntry]:
        """The service's ledger, for reconciliation and tests."""
        params = {"kind": kind} | ({"outcome": outcome} if outcome else {})
        return [LedgerEntry.model_validate(row) for row in self._call("GET", "/v1/ledger", params=params)]

    def faults(self) -> dict[str, int]:
        """How many faults of each kind the service injected since it started."""
        return self._call("GET", "/v1/faults")


def configured_gateway(db: Database, rbi_processing: timedelta | None = None) -> PaymentGateway:
    """The gateway service at BILLING_GATEWAY_URL when it is set, else the in-process sandbox gateway on the
    billing database (its ledger tables there)."""
    url = os.environ.get(GATEWAY_URL_ENV)
    if url:
        return HttpGateway(url)
    return SandboxGateway(db) if rbi_processing is None else SandboxGateway(db, rbi_processing=rbi_processing)


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", answer.text))
    except ValueError:
        return answer.text
