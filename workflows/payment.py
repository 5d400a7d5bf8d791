"""The payment workflow: charge an invoice, e-mail the outcome, and wait for a retry signal after a failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts import clock
    from activities.email import EmailActivities, EmailRequest
    from activities.fx import FxActivities, FxRequest
    from activities.payments import ChargeOutcome, ChargeRequest, PaymentActivities
    from activities.organization import InvoiceNotice, OrganizationActivities
    from activities.rbi import IssuerOutcome, PaymentRef, PrepareRequest, RbiActivities
    from billing.tables import PaymentStatus
    from workflows.shared import PAYMENT_STATUS, PAYMENT_WAITING_FOR

RBI_PATCH = "rbi-payments"  # histories recorded before India payments replay without the new steps
OVERDUE_PATCH = "overdue-tracking"  # likewise for telling the organization's workflow about unpaid invoices
CHARGE_TIMEOUT = timedelta(seconds=60)
EMAIL_TIMEOUT = timedelta(seconds=30)
# Infrastructure failures retry with backoff; business declines are results, not errors.
ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                             non_retryable_error_types=["UnknownToken", "IdempotencyConflict"])


class ChargeInvoiceInput(BaseModel):
    org_id: str
    invoice_id: int
    invoice_number: str
    period: str
    amount: Decimal
    currency: str
    refundable: bool = True  # SPEC D2: charges for usage after a missed activation grace period are not
    rbi_authorization_window: timedelta = timedelta(days=5)  # SPEC E4, H4
    notify_workflow_id: str | None = None  # a workflow to tell of each outcome (a Flex Consulting checkout)


class PaymentNotice(BaseModel):
    invoice: str
    status: str


class RetryRequest(BaseModel):
    requested_by: str = "customer"


class GatewayOutcome(BaseModel):
    """A verified gateway webhook, relayed by the starter (the issuer settled a PROCESSING charge)."""

    charge_id: str
    succeeded: bool
    failure_code: str | None = None
    event_id: str


class PaymentState(BaseModel):
    invoice_number: str
    status: PaymentStatus
    attempts: int
    failure_code: str | None = None
    waiting_for: str | None = None  # what the workflow waits for, in words an operator reads
    payments: list[ChargeOutcome] = []


@workflow.defn
class PaymentWorkflow:
    def __init__(self) -> None:
        self._state: PaymentState | None = None
        self._retry_requested = False
        self._busy = True
        self._outcomes: dict[str, GatewayOutcome] = {}  # by charge: a duplicate webhook changes nothing
        self._authorized: set[str] = set()
        self._reversal_requested = False
        self._wake = None  # what the workflow rests on: idle only while it is still false

    @workflow.run
    async def run(self, request: ChargeInvoiceInput) -> PaymentState:
        self._state = PaymentState(invoice_number=request.invoice_number, status=PaymentStatus.NEW, attempts=0)
        self._show(PaymentStatus.NEW, f"Charging {request.amount} {request.currency} for {request.invoice_number}")
        while True:
            self._busy = True
            attempt = self._state.attempts + 1
            charge_currency, fx_rate = None, None
            if workflow.patched(RBI_PATCH):
                prepared = await workflow.execute_activity_method(
                    RbiActivities.prepare_charge,
                    PrepareRequest(org_id=request.org_id, register_mandate=attempt > 1, at=clock.now()),
                    start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=ACTIVITY_RETRY)
                if prepared.charge_currency not in (None, request.currency):
                    # SPEC E3: the rate in force as the payment moves to PROCESSING, recorded, never recomputed.
                    fx = await workflow.execute_activity_method(
                        FxActivities.fx_rate, FxRequest(currency=prepared.charge_currency, at=clock.now()),
                        start_to_close_timeout=timedelta(seconds=30), retry_policy=ACTIVITY_RETRY)
                    charge_currency, fx_rate = prepared.charge_currency, fx.rate
            outcome = await workflow.execute_activity_method(
                PaymentActivities.charge_payment,
                ChargeRequest(org_id=request.org_id, invoice_id=request.invoice_id,
                              invoice_number=request.invoice_number, attempt=attempt,
                              idempotency_key=f"{request.invoice_number}:{attempt}", amount=request.amount,
                              currency=request.currency, at=clock.now(), refundable=request.refundable,
                              charge_currency=charge_currency, fx_rate=fx_rate),
                start_to_close_timeout=CHARGE_TIMEOUT, retry_policy=ACTIVITY_RETRY,
            )
            self._state.attempts = attempt
            if outcome.status in (PaymentStatus.PROCESSING, PaymentStatus.PENDING_REVERSAL):
                outcome = await self._rbi_processing(request, outcome)
                if outcome.status in (PaymentStatus.REFUNDED, PaymentStatus.CANCELLED):
                    self._state.payments.append(outcome)
                    self._show(outcome.status, f"Payment reversed: {outcome.status.value.lower()}")
                    self._busy = False
                    return self._state
            self._state.payments.append(outcome)
            self._state.failure_code = outcome.failure_code
            if outcome.status == PaymentStatus.PAID:
                if attempt > 1 and workflow.patched(OVERDUE_PATCH):
                    await self._notify_org(request, paid=True)
                self._show(PaymentStatus.PAID, f"Paid on attempt {attempt}; sending the receipt")
                await self._email(request, "payment_succeeded", f"payment_succeeded:{request.invoice_number}",
                                  outcome)
                await self._tell_origin(request, outcome)
                self._show(PaymentStatus.PAID, f"Paid {outcome.amount} {outcome.currency} on attempt {attempt}",
                           waiting_for=None)
                self._busy, self._retry_requested = False, False
                return self._state
            self._show(outcome.status, f"Attempt {attempt} failed ({outcome.failure_code}); e-mailing the billing recipients")
            if workflow.patched(OVERDUE_PATCH) and not self._retry_requested:
                # D9: overdue counts from the invoice's date. With a retry already queued, the next attempt reports.
                await self._notify_org(request, paid=False)
            await self._email(request, "payment_failed", f"payment_failed:{request.invoice_number}:{attempt}", outcome)
            await self._tell_origin(request, outcome)
            self._show(outcome.status, f"Attempt {attempt} failed ({outcome.failure_code}). Waiting for a retry "
                       "signal (customer retry from the e-mail or invoice, SPEC F3)", waiting_for="retry")
            self._busy = False
            await workflow.wait_condition(lambda: self._retry_requested)
            self._retry_requested = False

    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        """SPEC F3/H3: a retry is a signal. One that arrives while an attempt is in flight is kept: it applies
        if that attempt fails (re-authentication racing a customer's retry collects once, charges once)."""
        if self._state is not None and self._state.status == PaymentStatus.PAID:
            workflow.logger.info("retry signal ignored: the payment is already PAID")
            return
        workflow.logger.info("retry requested by %s", request.requested_by)
        self._retry_requested = True

    async def _rbi_processing(self, request: ChargeInvoiceInput, outcome: ChargeOutcome) -> ChargeOutcome:
        """SPEC E3-E6: PROCESSING until the issuer's outcome arrives by webhook (a signal; nothing polls)."""
        charge = outcome.charge_id
        self._show(PaymentStatus.PROCESSING, f"{outcome.amount} {outcome.currency} at {outcome.fx_rate} with the "
                   "issuer for its notice period; waiting for the issuer's outcome", waiting_for="issuer")
        if outcome.requires_authorization and charge not in self._outcomes:
            deadline = clock.now() + request.rbi_authorization_window
            await self._email(request, "authorization_required", f"authorization_required:{charge}", outcome,
                              deadline=f"{deadline:%Y-%m-%d %H:%M}")
            self._show(PaymentStatus.PROCESSING, f"Above INR 15,000: waiting for the customer's authorization until "
                       f"{deadline:%Y-%m-%d %H:%M} UTC", waiting_for="authorization")
            await self._rest(lambda: charge in self._authorized or charge in self._outcomes
                             or self._reversal_requested, deadline)
            while self._reversal_requested and charge not in self._authorized and charge not in self._outcomes \
                    and clock.now() < deadline:
                await self._reverse(outcome)
                await self._rest(lambda: charge in self._authorized or charge in self._outcomes, deadline)
            if charge in self._authorized:
                await workflow.execute_activity_method(RbiActivities.authorize,
                                                       PaymentRef(payment_id=outcome.payment_id, at=clock.now()),
                                                       start_to_close_timeout=CHARGE_TIMEOUT, retry_policy=ACTIVITY_RETRY)
            elif charge not in self._outcomes:
                status = await workflow.execute_activity_method(
                    RbiActivities.withdraw_unauthorized, PaymentRef(payment_id=outcome.payment_id, at=clock.now()),
                    start_to_close_timeout=CHARGE_TIMEOUT, retry_policy=ACTIVITY_RETRY)
                return outcome.model_copy(update={"status": PaymentStatus(status),
                                                  "failure_code": "authorization_missing"})
        self._show(PaymentStatus.PROCESSING, "Waiting for the issuer's outcome", waiting_for="issuer")
        while charge not in self._outcomes:
            if self._reversal_requested:
                await self._reverse(outcome)
            await self._rest(lambda: charge in self._outcomes or
                             (self._reversal_requested and self._state.status != PaymentStatus.PENDING_REVERSAL))
        result = self._outcomes[charge]
        status = await workflow.execute_activity_method(
            RbiActivities.record_outcome,
            IssuerOutcome(payment_id=outcome.payment_id, succeeded=result.succeeded, failure_code=result.failure_code,
                          at=clock.now()),
            start_to_close_timeout=CHARGE_TIMEOUT, retry_policy=ACTIVITY_RETRY)
        return outcome.model_copy(update={"status": PaymentStatus(status), "failure_code": result.failure_code})

    async def _tell_origin(self, request: ChargeInvoiceInput, outcome: ChargeOutcome) -> None:
        """A workflow that asked for this payment (a Flex Consulting checkout) hears of each outcome."""
        if request.notify_workflow_id:
            await workflow.get_external_workflow_handle(request.notify_workflow_id).signal(
                "payment_outcome", PaymentNotice(invoice=request.invoice_number, status=outcome.status.value))

    async def _notify_org(self, request: ChargeInvoiceInput, paid: bool) -> None:
        await workflow.execute_activity_method(
            OrganizationActivities.notify, InvoiceNotice(org_id=request.org_id, invoice=request.invoice_number,
                                                         paid=paid),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=ACTIVITY_RETRY)

    async def _reverse(self, outcome: ChargeOutcome) -> None:
        if self._state.status == PaymentStatus.PENDING_REVERSAL:
            return
        await workflow.execute_activity_method(RbiActivities.mark_pending_reversal,
                                               PaymentRef(payment_id=outcome.payment_id, at=clock.now()),
                                               start_to_close_timeout=CHARGE_TIMEOUT, retry_policy=ACTIVITY_RETRY)
        self._show(PaymentStatus.PENDING_REVERSAL, "Pending reversal: refunded if the issuer's outcome is a "
                   "success, cancelled if it is a failure (SPEC E6)", waiting_for="issuer")

    async def _rest(self, condition, until=None) -> None:
        self._busy, self._wake = False, condition
        try:
            timeout = None if until is None else max(until - clock.now(), timedelta(0))
            await workflow.wait_condition(condition, timeout=timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._busy, self._wake = True, None

    @workflow.signal
    def gateway_outcome(self, outcome: GatewayOutcome) -> None:
        if outcome.charge_id not in self._outcomes:
            self._outcomes[outcome.charge_id] = outcome
        else:
            workflow.logger.info("duplicate gateway webhook %s ignored", outcome.event_id)

    @workflow.signal
    def authorize(self, charge_id: str) -> None:
        """SPEC E4: the customer authorized the charge through the issuer's link."""
        self._authorized.add(charge_id)

    @workflow.signal
    def reverse(self) -> None:
        """SPEC E6: undo the payment as soon as the issuer has decided."""
        self._reversal_requested = True

    @workflow.query
    def state(self) -> PaymentState | None:
        return self._state

    @workflow.update
    async def wait_idle(self) -> PaymentState:
        """Returns once the workflow waits on something outside itself (a signal), not on its own activities."""
        await workflow.wait_condition(lambda: not self._busy and not self._retry_requested
                                      and not (self._wake is not None and self._wake()))
        return self._state

    def _show(self, status: PaymentStatus, details: str, waiting_for: str | None = None) -> None:
        self._state.status = status
        self._state.waiting_for = waiting_for
        workflow.upsert_search_attributes([PAYMENT_STATUS.value_set(status.value),
                                           PAYMENT_WAITING_FOR.value_set(waiting_for or "nothing")])
        workflow.set_current_details(details)

    async def _email(self, request: ChargeInvoiceInput, kind: str, key: str, outcome: ChargeOutcome,
                     **extra: str) -> None:
        data = {"invoice": request.invoice_number, "period": request.period, "amount": str(outcome.amount),
                "currency": outcome.currency, **extra}
        if outcome.failure_code:
            data["failure_code"] = outcome.failure_code
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(key=key, org_id=request.org_id, kind=kind, data=data, at=clock.now()),
            start_to_close_timeout=EMAIL_TIMEOUT, retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
