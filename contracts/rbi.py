"""Contract of the rbi activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime
from pydantic import BaseModel
from temporalio import activity


class PrepareRequest(BaseModel):
    org_id: str
    register_mandate: bool  # SPEC E1/E5: retrying a payment registers a new mandate
    at: datetime


class PreparedCharge(BaseModel):
    method: str | None
    charge_currency: str | None = None  # INR for India-issued cards (E3)
    mandate_registered: bool = False


class MandateRequest(BaseModel):
    org_id: str
    at: datetime


class PaymentRef(BaseModel):
    payment_id: int
    at: datetime


class IssuerOutcome(BaseModel):
    payment_id: int
    succeeded: bool
    failure_code: str | None = None
    at: datetime


class RbiActivities:
    """What workflows call (activities/rbi.py implements it, registered under the same names)."""

    @activity.defn(name='prepare_charge')
    async def prepare_charge(self, request: PrepareRequest) -> PreparedCharge:
        """The prepare_charge activity."""

    @activity.defn(name='register_mandate')
    async def register_mandate(self, request: MandateRequest) -> bool:
        """Adding an India-issued card registers a mandate (E1)."""

    @activity.defn(name='authorize_rbi_charge')
    def authorize(self, request: PaymentRef) -> None:
        """The authorize_rbi_charge activity."""

    @activity.defn(name='mark_pending_reversal')
    def mark_pending_reversal(self, request: PaymentRef) -> str:
        """SPEC E6: the payment will be undone as soon as the issuer has decided."""

    @activity.defn(name='withdraw_unauthorized_charge')
    def withdraw_unauthorized(self, request: PaymentRef) -> str:
        """SPEC E4: no authorization within the window: the payment FAILS."""

    @activity.defn(name='record_issuer_outcome')
    def record_outcome(self, request: IssuerOutcome) -> str:
        """The issuer settled: PAID or FAILED; after a reversal request a success is refunded and a failure cancelled (E6). Idempotent: a duplicate webhook finds the payment already settled."""
