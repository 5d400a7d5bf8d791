"""Charging activities: one charge attempt per idempotency key, recorded before and after the gateway call."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._context import activity_log_context
from activities.delivery import EventPublisher, dispatches_events, publish_invoice, publish_payment
from contracts.delivery import EventType
from store.db import Database
from store.gateway import (RBI_AUTHORIZATION_THRESHOLD, GatewayUnavailable, IdempotencyConflict, PaymentGateway,
                           UnknownToken)
from billing.money import round_money
from store.queries import active_payment_method
from store.tables import (Invoice, InvoiceForgiveness, InvoiceStatus, Payment, PaymentEvent, PaymentMethod,
                            PaymentStatus)
from contracts.payments import ChargeRequest, ChargeOutcome, ManualPayment, Forgiveness, Forgiven, RefundRequest, Refunded  # noqa: F401

FINAL = {PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.FAILED_AUTHENTICATION, PaymentStatus.REFUNDED,
         PaymentStatus.CANCELLED}
SETTLED_OR_PENDING = FINAL | {PaymentStatus.PROCESSING, PaymentStatus.PENDING_REVERSAL}


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
        publish_invoice(s, invoice, EventType.INVOICE_PAID, at)  # I6: in the transaction that records it
    s.add(invoice)
    for tax_invoice in s.exec(select(Invoice).where(Invoice.cloud_invoice_id == invoice.id)):
        tax_invoice.status, tax_invoice.paid_at = invoice.status, invoice.paid_at
        if status in (InvoiceStatus.PAID, InvoiceStatus.FORGIVEN):
            tax_invoice.amount_due = Decimal("0")
        s.add(tax_invoice)


def outstanding(invoice: Invoice) -> Decimal:
    """What is still to be paid: due on the card, or invoiced under the subscription and not yet received (D10)."""
    return invoice.amount_due + invoice.invoiced


def apply_payment(s, invoice: Invoice, amount: Decimal, at: datetime) -> None:
    """A payment received (card, wire, ACH) in the invoice's currency: it settles what is due on the card first,
    then what was invoiced under the subscription; the invoice is PAID once nothing is outstanding (D8, D10)."""
    from_due = min(amount, invoice.amount_due)
    invoice.amount_due -= from_due
    invoice.invoiced -= amount - from_due
    if outstanding(invoice) == 0:
        record_invoice_outcome(s, invoice, InvoiceStatus.PAID, at)
        return
    s.add(invoice)
    for tax_invoice in s.exec(select(Invoice).where(Invoice.cloud_invoice_id == invoice.id)):
        rate = tax_invoice.fx_rate if tax_invoice.currency != invoice.currency else Decimal("1")
        tax_invoice.amount_due = max(tax_invoice.amount_due - round_money(amount * rate, tax_invoice.currency),
                                     Decimal("0"))
        s.add(tax_invoice)


def refusal_to_refund(payments: list[Payment]) -> str | None:
    """Why the PAID payments of an invoice cannot be refunded, or None (SPEC D2, D10)."""
    paid = [p for p in payments if p.status == PaymentStatus.PAID and p.method in ("card", "paypal")]
    refunded = {p.idempotency_key.removeprefix("refund:") for p in payments if p.status == PaymentStatus.REFUNDED}
    if any(not p.refundable for p in paid):
        return ("non-refundable (SPEC D2): it was charged to the card because the subscription's activation code was "
                "not applied within the first 30 days of use")
    if not [p for p in paid if p.idempotency_key not in refunded]:
        return "nothing to refund"
    return None


class PaymentActivities:
    def __init__(self, db: Database, gateway: PaymentGateway, events: EventPublisher | None = None) -> None:
        self.db = db
        self.gateway = gateway
        self.events = events

    @activity.defn(name="charge_payment")
    @dispatches_events(lambda self, request: request.org_id)
    def charge_payment(self, request: ChargeRequest) -> ChargeOutcome:
        with activity_log_context(org_id=request.org_id, invoice=request.invoice_number,
                                  attempt=request.attempt) as log:
            payment, token, opened_now = self._open_attempt(request)
            if payment.status in SETTLED_OR_PENDING:
                log.info("charge already made", status=payment.status)
                return _outcome(payment, self._requires_authorization(payment))
            if token is None:
                return _outcome(self._settle(payment.id, request, succeeded=False, charge_id=None,
                                             failure_code="no_payment_method"))
            try:
                result = None
                if not opened_now:
                    # An earlier execution opened this attempt and may have reached the gateway without hearing
                    # back (a timeout, a crash): ask the gateway what became of the key before charging, as Kill
                    # Bill's Janitor asks its plugin about a transaction in an unknown state (M3).
                    result = self.gateway.charge_by_key(request.idempotency_key)
                    if result is not None:
                        log.info("charge found at the gateway by its key", charge_id=result.charge_id)
                if result is None:
                    result = self.gateway.charge(idempotency_key=request.idempotency_key, token=token,
                                                 amount=payment.amount, currency=payment.currency, at=request.at,
                                                 usd_amount=request.amount, on_session=request.on_session)
            except (UnknownToken, IdempotencyConflict) as err:
                raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
            except GatewayUnavailable as err:
                # The outcome is unknown: the activity's retry asks the gateway by key first (above).
                log.warning("gateway did not answer", error=str(err))
                raise ApplicationError(str(err), type="GatewayUnavailable") from err
            if result.processing or result.by_webhook:
                # An India charge is settled by the issuer's webhook (E3-E4), relayed to the workflow, even when the
                # lookup by key finds it already settled: recorded PROCESSING here, as when it was first made.
                processing = self._processing(payment.id, request, result.charge_id)
                log.info("charge processing with the issuer", amount=str(processing.amount),
                         currency=processing.currency, fx_rate=str(processing.fx_rate))
                return _outcome(processing, result.requires_authorization)
            settled = self._settle(payment.id, request, succeeded=result.succeeded, charge_id=result.charge_id,
                                   failure_code=result.failure_code)
            log.info("charge attempted", status=settled.status, failure_code=settled.failure_code,
                     amount=str(settled.amount), currency=settled.currency)
            return _outcome(settled)

    def _open_attempt(self, request: ChargeRequest) -> tuple[Payment, str | None, bool]:
        """The payment row for this key, created NEW with the method on file if it is not there yet; and whether
        this call created it (else an earlier execution may already have asked the gateway)."""
        try:
            with self.db.session() as s:
                payment = s.exec(select(Payment).where(Payment.idempotency_key == request.idempotency_key)).first()
                opened_now = payment is None
                if payment is None:
                    method = active_payment_method(s, request.org_id)
                    if request.method is not None:
                        chosen = self._chosen_method(s, request)
                        # The newest method the customer gave: the one chosen at checkout, unless the method on
                        # file was replaced since (F3: a declined card is fixed by replacing it, then RETRY).
                        if method is None or method.id < chosen.id:  # ids follow the order they were given
                            method = chosen
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
                return payment, token, opened_now
        except IntegrityError:
            # A concurrent attempt with the same key created the row: the database refused a duplicate.
            return self._open_attempt(request)

    @staticmethod
    def _chosen_method(s, request: ChargeRequest) -> PaymentMethod:
        """B3: the method chosen at checkout, kept as a method of the organization that is not its method on file
        (inactive), so the payment names the card it charged (G2) and a retry charges the same one."""
        chosen = request.method
        method = s.exec(select(PaymentMethod).where(PaymentMethod.token == chosen.token)).first()
        if method is None:
            method = PaymentMethod(org_id=request.org_id, active=False, created_at=request.at, **chosen.model_dump())
            s.add(method)
            s.flush()
        elif method.org_id != request.org_id:
            raise ApplicationError("the chosen payment method belongs to another organization",
                                   type="UnknownToken", non_retryable=True)
        return method

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
            # Locked: a second execution of this activity (two workers, or a retry after a timeout while the first
            # still runs) waits here and then finds the payment settled, instead of applying it twice (M3).
            payment = s.get(Payment, payment_id, with_for_update=True)
            if payment.status in FINAL:
                return payment
            payment.status = status
            payment.failure_code = failure_code
            payment.gateway_charge_id = charge_id
            payment.updated_at = request.at
            s.add(payment)
            s.add(PaymentEvent(payment_id=payment.id, status=status, detail=failure_code, at=request.at))
            publish_payment(s, payment, request.at)
            invoice = s.get(Invoice, request.invoice_id)
            if succeeded and request.on_session:
                apply_payment(s, invoice, request.amount, request.at)  # request.amount: the invoice's currency
            elif succeeded:
                record_invoice_outcome(s, invoice, InvoiceStatus.PAID, request.at,
                                       amount_due=invoice.amount_due - payment.amount)
            elif invoice.invoiced == 0:  # an invoice billed under a subscription stays INVOICED (D10)
                record_invoice_outcome(s, invoice, InvoiceStatus.FAILED, request.at)
            return payment

    @activity.defn(name="record_manual_payment")
    @dispatches_events(lambda self, request: request.org_id)
    def record_manual_payment(self, request: ManualPayment) -> ChargeOutcome:
        """SPEC D10: a wire or ACH payment received; partial payments leave the rest outstanding. Exactly once:
        the row's key is the invoice and our attempt number."""
        key = f"{request.invoice_number}:{request.attempt}"
        with activity_log_context(org_id=request.org_id, invoice=request.invoice_number, attempt=request.attempt) \
                as log, self.db.session() as s:
            payment = s.exec(select(Payment).where(Payment.idempotency_key == key)).first()
            if payment is not None:
                return _outcome(payment)
            invoice = s.get(Invoice, request.invoice_id)
            if request.amount > outstanding(invoice):
                raise ApplicationError(f"{request.amount} is more than the {outstanding(invoice)} outstanding on "
                                       f"{invoice.number}", type="Overpayment", non_retryable=True)
            payment = Payment(idempotency_key=key, org_id=request.org_id, invoice_id=invoice.id,
                              attempt=request.attempt, method=request.method, status=PaymentStatus.PAID,
                              amount=request.amount, currency=invoice.currency, refundable=False,
                              created_at=request.at, updated_at=request.at)
            s.add(payment)
            s.flush()
            detail = f"{request.method} recorded by {request.recorded_by}" + \
                (f", reference {request.reference}" if request.reference else "")
            s.add(PaymentEvent(payment_id=payment.id, status=PaymentStatus.PAID, detail=detail[:200], at=request.at))
            publish_payment(s, payment, request.at)
            apply_payment(s, invoice, request.amount, request.at)
            log.info("manual payment recorded", method=request.method, amount=str(request.amount),
                     outstanding=str(outstanding(invoice)))
            return _outcome(payment)

    @activity.defn(name="forgive_invoice")
    def forgive_invoice(self, request: Forgiveness) -> Forgiven:
        """SPEC D10: what is outstanding is forgiven, with an audit record naming who and why."""
        with activity_log_context(org_id=request.org_id, invoice=request.invoice_number) as log, \
                self.db.session() as s:
            invoice = s.get(Invoice, request.invoice_id)
            audit = s.exec(select(InvoiceForgiveness).where(InvoiceForgiveness.invoice_id == invoice.id)).first()
            if audit is None:
                audit = InvoiceForgiveness(invoice_id=invoice.id, org_id=request.org_id, amount=outstanding(invoice),
                                           currency=invoice.currency, reason=request.reason[:500],
                                           forgiven_by=request.forgiven_by, at=request.at)
                s.add(audit)
                invoice.forgiven += audit.amount
                invoice.amount_due, invoice.invoiced = Decimal("0"), Decimal("0")
                record_invoice_outcome(s, invoice, InvoiceStatus.FORGIVEN, request.at)
                log.info("invoice forgiven", amount=str(audit.amount), forgiven_by=request.forgiven_by)
            return Forgiven(amount=audit.amount, currency=audit.currency)

    @activity.defn(name="refund_payment")
    @dispatches_events(lambda self, request: request.org_id)
    def refund_payment(self, request: RefundRequest) -> Refunded:
        """SPEC D10: refund the invoice's PAID card and PayPal charges through the gateway (one idempotency key per
        charge), recording each as a REFUNDED payment; D2's non-refundable charges are refused."""
        with activity_log_context(org_id=request.org_id, invoice=request.invoice_number) as log:
            with self.db.session() as s:
                payments = list(s.exec(select(Payment).where(Payment.invoice_id == request.invoice_id)
                                       .order_by(Payment.attempt)).all())
            refusal = refusal_to_refund(payments)
            done = [p for p in payments if p.status == PaymentStatus.REFUNDED and p.idempotency_key.startswith("refund:")]
            if refusal == "nothing to refund" and done:
                return Refunded(payments=[_outcome(p) for p in done])
            if refusal is not None:
                raise ApplicationError(f"the payment of {request.invoice_number} cannot be refunded: {refusal}",
                                       type="NotRefundable", non_retryable=True)
            refunded = {p.idempotency_key.removeprefix("refund:") for p in done}
            for paid in [p for p in payments if p.status == PaymentStatus.PAID and p.method in ("card", "paypal")
                         and p.idempotency_key not in refunded]:
                key = f"refund:{paid.idempotency_key}"
                result = self.gateway.refund(idempotency_key=key, charge_id=paid.gateway_charge_id, at=request.at)
                with self.db.session() as s:
                    attempt = max(p.attempt for p in s.exec(select(Payment).where(
                        Payment.invoice_id == request.invoice_id))) + 1
                    row = Payment(idempotency_key=key, org_id=request.org_id, invoice_id=request.invoice_id,
                                  attempt=attempt, method=paid.method, payment_method_id=paid.payment_method_id,
                                  status=PaymentStatus.REFUNDED, amount=paid.amount, currency=paid.currency,
                                  fx_rate=paid.fx_rate, refundable=False, gateway_charge_id=result.charge_id,
                                  created_at=request.at, updated_at=request.at)
                    s.add(row)
                    s.flush()
                    s.add(PaymentEvent(payment_id=row.id, status=PaymentStatus.REFUNDED, at=request.at,
                                       detail=f"refund of attempt {paid.attempt} by {request.requested_by}"[:200]))
                    publish_payment(s, row, request.at)
                    done.append(row)
                log.info("payment refunded", attempt=paid.attempt, amount=str(paid.amount), currency=paid.currency)
            return Refunded(payments=[_outcome(p) for p in done])
