"""India (RBI) activities (SPEC E1-E6): register mandates, authorize or withdraw processing charges, and record
what the issuer decided (PAID, FAILED, or after a reversal REFUNDED / CANCELLED)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

from sqlmodel import select
from temporalio import activity

from activities._context import activity_log_context
from activities.delivery import EventPublisher, dispatches_events, publish_payment
from activities.email import EmailActivities, EmailRequest
from activities.payments import record_invoice_outcome
from store.db import Database
from store.gateway import PaymentGateway
from store.queries import active_payment_method
from store.tables import Invoice, InvoiceStatus, Mandate, Payment, PaymentEvent, PaymentMethod, PaymentStatus
from contracts.rbi import PrepareRequest, PreparedCharge, MandateRequest, PaymentRef, IssuerOutcome  # noqa: F401

MANDATE_LIMIT = Decimal("1400.00")  # SPEC E1: USD 1,400 a month
HEARTBEAT_EVERY = 5.0  # seconds; registering a mandate may take the issuer up to 2 minutes (E1)


class RbiActivities:
    def __init__(self, db: Database, gateway: PaymentGateway, email: EmailActivities,
                 events: EventPublisher | None = None) -> None:
        self.db = db
        self.gateway = gateway
        self.email = email
        self.events = events

    def _org_of_payment(self, payment_id: int) -> str:
        with self.db.session() as s:
            return s.get(Payment, payment_id).org_id

    @activity.defn(name="prepare_charge")
    async def prepare_charge(self, request: PrepareRequest) -> PreparedCharge:
        method = await asyncio.to_thread(self._method, request.org_id)
        if method is None or method.issuing_country != "IN":
            return PreparedCharge(method=method.kind if method else None)
        registered = False
        if request.register_mandate:
            await self._register(request.org_id, method, request.at, key=f"mandate:{activity.info().workflow_id}:"
                                                                          f"{activity.info().activity_id}")
            registered = True
        return PreparedCharge(method=method.kind, charge_currency="INR", mandate_registered=registered)

    @activity.defn(name="register_mandate")
    async def register_mandate(self, request: MandateRequest) -> bool:
        """Adding an India-issued card registers a mandate (E1)."""
        method = await asyncio.to_thread(self._method, request.org_id)
        if method is None or method.issuing_country != "IN":
            return False
        await self._register(request.org_id, method, request.at, key=f"mandate:pm:{method.id}")
        return True

    async def _register(self, org_id: str, method: PaymentMethod, at: datetime, key: str) -> None:
        with activity_log_context(org_id=org_id) as log:
            existing = await asyncio.to_thread(self._mandate_by_key, key)
            if existing is None:
                # The issuer verifies the customer first and may take minutes: keep telling Temporal we live.
                call = asyncio.create_task(asyncio.to_thread(
                    self.gateway.register_mandate, token=method.token, limit=MANDATE_LIMIT, currency="USD", at=at))
                while not call.done():
                    activity.heartbeat("waiting for the issuer to register the mandate")
                    await asyncio.wait({call}, timeout=HEARTBEAT_EVERY)
                result = call.result()
                existing = await asyncio.to_thread(self._record_mandate, org_id, method.id, result.mandate_id, key, at)
                log.info("RBI mandate registered", mandate=result.mandate_id, limit=str(MANDATE_LIMIT))
            await self.email.deliver(EmailRequest(key=f"mandate_registered:{existing.gateway_mandate_id}",
                                                  org_id=org_id, kind="mandate_registered", at=at,
                                                  data={"limit": str(existing.limit), "currency": existing.currency,
                                                        "last4": method.last4 or ""}))

    def _method(self, org_id: str) -> PaymentMethod | None:
        with self.db.session() as s:
            return active_payment_method(s, org_id)

    def _mandate_by_key(self, key: str) -> Mandate | None:
        with self.db.session() as s:
            return s.exec(select(Mandate).where(Mandate.registration_key == key)).first()

    def _record_mandate(self, org_id: str, method_id: int, gateway_id: str, key: str, at: datetime) -> Mandate:
        with self.db.session() as s:
            for old in s.exec(select(Mandate).where(Mandate.org_id == org_id, Mandate.status == "ACTIVE")):
                old.status, old.revoked_at = "REPLACED", at
                s.add(old)
            mandate = Mandate(org_id=org_id, payment_method_id=method_id, gateway_mandate_id=gateway_id,
                              registration_key=key, limit=MANDATE_LIMIT, currency="USD", registered_at=at)
            s.add(mandate)
        return mandate

    @activity.defn(name="authorize_rbi_charge")
    def authorize(self, request: PaymentRef) -> None:
        with self.db.session() as s:
            charge_id = s.get(Payment, request.payment_id).gateway_charge_id
        self.gateway.authorize(charge_id=charge_id, at=request.at)

    @activity.defn(name="mark_pending_reversal")
    def mark_pending_reversal(self, request: PaymentRef) -> str:
        """SPEC E6: the payment will be undone as soon as the issuer has decided."""
        with self.db.session() as s:
            payment = s.get(Payment, request.payment_id)
            if payment.status == PaymentStatus.PROCESSING:
                self._move(s, payment, PaymentStatus.PENDING_REVERSAL, "reversal requested", request.at)
            return payment.status

    @activity.defn(name="withdraw_unauthorized_charge")
    @dispatches_events(lambda self, request: self._org_of_payment(request.payment_id))
    def withdraw_unauthorized(self, request: PaymentRef) -> str:
        """SPEC E4: no authorization within the window: the payment FAILS."""
        with self.db.session() as s:
            payment = s.get(Payment, request.payment_id)
            if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.PENDING_REVERSAL):
                return payment.status
            self.gateway.cancel(charge_id=payment.gateway_charge_id, at=request.at)
            reversing = payment.status == PaymentStatus.PENDING_REVERSAL
            self._move(s, payment, PaymentStatus.CANCELLED if reversing else PaymentStatus.FAILED,
                       "authorization_missing", request.at)
            payment.failure_code = "authorization_missing"
            self._invoice_after(s, payment, succeeded=False, at=request.at)
            return payment.status

    @activity.defn(name="record_issuer_outcome")
    @dispatches_events(lambda self, request: self._org_of_payment(request.payment_id))
    def record_outcome(self, request: IssuerOutcome) -> str:
        """The issuer settled: PAID or FAILED; after a reversal request a success is refunded and a failure
        cancelled (E6). Idempotent: a duplicate webhook finds the payment already settled."""
        with activity_log_context(payment_id=request.payment_id) as log, self.db.session() as s:
            payment = s.get(Payment, request.payment_id)
            if payment.status == PaymentStatus.PENDING_REVERSAL:
                if request.succeeded:
                    self.gateway.refund(idempotency_key=f"reversal:{payment.idempotency_key}",
                                        charge_id=payment.gateway_charge_id, at=request.at)
                    self._move(s, payment, PaymentStatus.REFUNDED, "reversed: refunded", request.at)
                else:
                    self._move(s, payment, PaymentStatus.CANCELLED, "reversed: cancelled", request.at)
                    payment.failure_code = request.failure_code
                self._invoice_after(s, payment, succeeded=False, at=request.at)
            elif payment.status == PaymentStatus.PROCESSING:
                status = PaymentStatus.PAID if request.succeeded else PaymentStatus.FAILED
                self._move(s, payment, status, request.failure_code, request.at)
                payment.failure_code = request.failure_code
                self._invoice_after(s, payment, succeeded=request.succeeded, at=request.at)
            log.info("issuer outcome recorded", status=payment.status)
            return payment.status

    @staticmethod
    def _move(s, payment: Payment, status: PaymentStatus, detail: str | None, at: datetime) -> None:
        payment.status, payment.updated_at = status, at
        s.add(payment)
        s.add(PaymentEvent(payment_id=payment.id, status=status, detail=detail, at=at))
        publish_payment(s, payment, at, failure_code=detail if status == PaymentStatus.FAILED else None)

    @staticmethod
    def _invoice_after(s, payment: Payment, succeeded: bool, at: datetime) -> None:
        invoice = s.get(Invoice, payment.invoice_id)
        if succeeded:
            record_invoice_outcome(s, invoice, InvoiceStatus.PAID, at, amount_due=Decimal("0"))
        elif payment.status in (PaymentStatus.REFUNDED, PaymentStatus.CANCELLED):
            record_invoice_outcome(s, invoice, InvoiceStatus.CLOSED, at)  # undone: the amount is due again
        else:
            record_invoice_outcome(s, invoice, InvoiceStatus.FAILED, at)
