"""Charging activities: one charge attempt per idempotency key, recorded before and after the gateway call."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._context import activity_log_context
from billing.db import Database
from billing.gateway import RBI_AUTHORIZATION_THRESHOLD, IdempotencyConflict, PaymentGateway, UnknownToken
from billing.money import round_money
from billing.tables import Invoice, InvoiceStatus, Payment, PaymentEvent, PaymentMethod, PaymentStatus

FINAL = {PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.FAILED_AUTHENTICATION, PaymentStatus.REFUNDED,
         PaymentStatus.CANCELLED}
SETTLED_OR_PENDING = FINAL | {PaymentStatus.PROCESSING, PaymentStatus.PENDING_REVERSAL}


class ChargeRequest(BaseModel):
    org_id: str
    invoice_id: int
    invoice_number: str
    attempt: int  # our attempt number, never Temporal's activity attempt
    idempotency_key: str
    amount: Decimal
    currency: str
    at: datetime
    refundable: bool = True
    charge_currency: str | None = None  # India-issued cards are charged in INR (SPEC E3)
    fx_rate: Decimal | None = None  # USD -> charge currency, from the fx activity when PROCESSING begins


class ChargeOutcome(BaseModel):
    payment_id: int
    attempt: int
    status: PaymentStatus
    method: str
    amount: Decimal
    currency: str
    failure_code: str | None = None
    charge_id: str | None = None
    fx_rate: Decimal | None = None
    requires_authorization: bool = False


def _outcome(payment: Payment, requires_authorization: bool = False) -> ChargeOutcome:
    return ChargeOutcome(payment_id=payment.id, attempt=payment.attempt, status=PaymentStatus(payment.status),
                         method=payment.method, amount=payment.amount, currency=payment.currency,
                         failure_code=payment.failure_code, charge_id=payment.gateway_charge_id,
                         fx_rate=payment.fx_rate, requires_authorization=requires_authorization)


def record_invoice_outcome(s, invoice: Invoice, status: InvoiceStatus, at: datetime,
                           amount_due: Decimal | None = None) -> None:
    """What a payment's outcome does to its invoice, and to the tax invoice that restates it (D5, D8)."""
    invoice.status = status
    if amount_due is not None:
        invoice.amount_due = amount_due
    if status == InvoiceStatus.PAID:
        invoice.paid_at = at
    s.add(invoice)
    for tax_invoice in s.exec(select(Invoice).where(Invoice.cloud_invoice_id == invoice.id)):
        tax_invoice.status, tax_invoice.paid_at = invoice.status, invoice.paid_at
        s.add(tax_invoice)


class PaymentActivities:
    def __init__(self, db: Database, gateway: PaymentGateway) -> None:
        self.db = db
        self.gateway = gateway

    @activity.defn(name="charge_payment")
    def charge_payment(self, request: ChargeRequest) -> ChargeOutcome:
        with activity_log_context(org_id=request.org_id, invoice=request.invoice_number,
                                  attempt=request.attempt) as log:
            payment, token = self._open_attempt(request)
            if payment.status in SETTLED_OR_PENDING:
                log.info("charge already made", status=payment.status)
                return _outcome(payment, self._requires_authorization(payment))
            if token is None:
                return _outcome(self._settle(payment.id, request, succeeded=False, charge_id=None,
                                             failure_code="no_payment_method"))
            try:
                result = self.gateway.charge(idempotency_key=request.idempotency_key, token=token,
                                             amount=payment.amount, currency=payment.currency, at=request.at,
                                             usd_amount=request.amount)
            except (UnknownToken, IdempotencyConflict) as err:
                raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
            if result.processing:
                processing = self._processing(payment.id, request, result.charge_id)
                log.info("charge processing with the issuer", amount=str(processing.amount),
                         currency=processing.currency, fx_rate=str(processing.fx_rate))
                return _outcome(processing, result.requires_authorization)
            settled = self._settle(payment.id, request, succeeded=result.succeeded, charge_id=result.charge_id,
                                   failure_code=result.failure_code)
            log.info("charge attempted", status=settled.status, failure_code=settled.failure_code,
                     amount=str(settled.amount), currency=settled.currency)
            return _outcome(settled)

    def _open_attempt(self, request: ChargeRequest) -> tuple[Payment, str | None]:
        """The payment row for this key, created NEW with the method on file if it is not there yet."""
        try:
            with self.db.session() as s:
                payment = s.exec(select(Payment).where(Payment.idempotency_key == request.idempotency_key)).first()
                if payment is None:
                    method = s.exec(select(PaymentMethod).where(PaymentMethod.org_id == request.org_id,
                                                                PaymentMethod.active == True)  # noqa: E712
                                    .order_by(PaymentMethod.id.desc())).first()
                    amount, currency = request.amount, request.currency
                    if request.charge_currency not in (None, request.currency):
                        # SPEC E3: converted once, at the rate in force as the payment moves to PROCESSING.
                        amount, currency = round_money(request.amount * request.fx_rate, request.charge_currency), \
                            request.charge_currency
                    payment = Payment(idempotency_key=request.idempotency_key, org_id=request.org_id,
                                      invoice_id=request.invoice_id, attempt=request.attempt,
                                      method=method.kind if method else "card",
                                      payment_method_id=method.id if method else None,
                                      status=PaymentStatus.NEW, amount=amount, currency=currency,
                                      fx_rate=request.fx_rate if currency != request.currency else None,
                                      refundable=request.refundable, created_at=request.at, updated_at=request.at)
                    s.add(payment)
                    s.flush()
                    s.add(PaymentEvent(payment_id=payment.id, status=PaymentStatus.NEW, at=request.at))
                token = None
                if payment.payment_method_id is not None:
                    token = s.get(PaymentMethod, payment.payment_method_id).token
                return payment, token
        except IntegrityError:
            # A concurrent attempt with the same key created the row: the database refused a duplicate.
            return self._open_attempt(request)

    def _processing(self, payment_id: int, request: ChargeRequest, charge_id: str) -> Payment:
        with self.db.session() as s:
            payment = s.get(Payment, payment_id)
            if payment.status == PaymentStatus.NEW:
                payment.status, payment.gateway_charge_id, payment.updated_at = PaymentStatus.PROCESSING, charge_id, request.at
                s.add(payment)
                s.add(PaymentEvent(payment_id=payment.id, status=PaymentStatus.PROCESSING,
                                   detail=f"fx {payment.fx_rate}" if payment.fx_rate else None, at=request.at))
            return payment

    def _requires_authorization(self, payment: Payment) -> bool:
        return payment.currency == "INR" and payment.amount > RBI_AUTHORIZATION_THRESHOLD

    def _settle(self, payment_id: int, request: ChargeRequest, *, succeeded: bool, charge_id: str | None,
                failure_code: str | None) -> Payment:
        if succeeded:
            status = PaymentStatus.PAID
        elif failure_code == "authentication_required":
            status = PaymentStatus.FAILED_AUTHENTICATION  # SCA (SPEC F1)
        else:
            status = PaymentStatus.FAILED
        with self.db.session() as s:
            payment = s.get(Payment, payment_id)
            if payment.status in FINAL:
                return payment
            payment.status = status
            payment.failure_code = failure_code
            payment.gateway_charge_id = charge_id
            payment.updated_at = request.at
            s.add(payment)
            s.add(PaymentEvent(payment_id=payment.id, status=status, detail=failure_code, at=request.at))
            invoice = s.get(Invoice, request.invoice_id)
            record_invoice_outcome(s, invoice, InvoiceStatus.PAID if succeeded else InvoiceStatus.FAILED, request.at,
                                   amount_due=invoice.amount_due - payment.amount if succeeded else None)
            return payment
