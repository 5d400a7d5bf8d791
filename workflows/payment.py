"""The payment workflow: charge an invoice, e-mail the outcome, and wait for a retry signal after a failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.options import EMAIL, GATEWAY, ISSUER, LOCAL
    from contracts import clock
    from contracts.email import EmailActivities, EmailRequest
    from contracts.fx import FxActivities, FxRequest
    from contracts.payments import (ChargeInvoiceInput, ChargeOutcome, ChargeRequest, Forgive, Forgiveness,  # noqa: F401
                                    GatewayOutcome, ManualPayment, PaymentActivities, PaymentNotice, PaymentState,
                                    PayNow, RecordPayment, Refund, RefundRequest, RetryRequest)
    from contracts.organization import InvoiceNotice, OrganizationActivities
    from contracts.rbi import IssuerOutcome, PaymentRef, PrepareRequest, RbiActivities
    from billing.statuses import PaymentStatus
    from contracts.flows import PAYMENT_STATUS, PAYMENT_WAITING_FOR, PAYMENT_WORKFLOW

RBI_PATCH = "rbi-payments"  # histories recorded before India payments replay without the new steps
OVERDUE_PATCH = "overdue-tracking"  # likewise for telling the organization's workflow about unpaid invoices
# The steps of the first attempt (the payment method, the FX rate, the keyed charge, the keyed e-mail) as local
# activities, and search attributes upserted only when they change: a card paid on its first attempt is one
# workflow task instead of four workflow tasks and three activity tasks. The month-end paces its starts to keep the
# charges under the gateway's rate limit (BILLING_MONTH_END_START_RATE).
# Each patch the SDK records also upserts TemporalChangeVersion (a visibility write): a lean run records this one
# only, the two above being implied by it.
LEAN_PATCH = "lean-payment"


@workflow.defn(name=PAYMENT_WORKFLOW)
class PaymentWorkflow:
    @workflow.init
    def __init__(self, request: ChargeInvoiceInput) -> None:
        self._request = request  # before any handler runs: an update may arrive in the first activation
        self._state = PaymentState(invoice_number=request.invoice_number, status=PaymentStatus.NEW,
                                   attempts=request.previous_attempts)
        self._running = False  # run() has begun; an operation sent with the start (update-with-start) waits for it
        self._retry_requested = False
        self._busy = True
        self._outcomes: dict[str, GatewayOutcome] = {}  # by charge: a duplicate webhook changes nothing
        self._authorized: set[str] = set()
        self._reversal_requested = False
        self._settled = False  # paid on-session, by wire/ACH, or forgiven: nothing more to collect
        self._lock = asyncio.Lock()
        self._lean = False  # LEAN_PATCH, decided as the run begins
        attributes = workflow.info().typed_search_attributes  # as started: NEW, and waiting for nothing
        self._shown = (attributes.get(PAYMENT_STATUS), attributes.get(PAYMENT_WAITING_FOR))

    @workflow.run
    async def run(self, request: ChargeInvoiceInput) -> PaymentState:
        self._lean = workflow.patched(LEAN_PATCH)
        self._running = True
        if request.mode != "charge":
            return await self._without_charging(request)
        self._show(PaymentStatus.NEW, f"Charging {request.amount} {request.currency} for {request.invoice_number}")
        while True:
            self._busy = True
            attempt = self._state.attempts + 1
            charge_currency, fx_rate = None, None
            if self._lean or workflow.patched(RBI_PATCH):  # a lean run postdates both earlier patches
                prepare = PrepareRequest(org_id=request.org_id, register_mandate=attempt > 1, at=clock.now())
                if self._lean and not prepare.register_mandate:  # a read: registering a mandate may take minutes
                    prepared = await workflow.execute_local_activity_method(RbiActivities.prepare_charge, prepare,
                                                                            **LOCAL)
                else:
                    prepared = await workflow.execute_activity_method(RbiActivities.prepare_charge, prepare, **ISSUER)
                if prepared.charge_currency not in (None, request.currency):
                    # SPEC E3: the rate in force as the payment moves to PROCESSING, recorded, never recomputed.
                    fx = await self._read(FxActivities.fx_rate,
                                          FxRequest(currency=prepared.charge_currency, at=clock.now()))
                    charge_currency, fx_rate = prepared.charge_currency, fx.rate
            outcome = await self._charge(
                ChargeRequest(org_id=request.org_id, invoice_id=request.invoice_id,
                              invoice_number=request.invoice_number, attempt=attempt,
                              idempotency_key=f"{request.invoice_number}:{attempt}", amount=request.amount,
                              currency=request.currency, at=clock.now(), refundable=request.refundable,
                              charge_currency=charge_currency, fx_rate=fx_rate, method=request.method))
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
                if attempt > 1 and (self._lean or workflow.patched(OVERDUE_PATCH)):
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
            if (self._lean or workflow.patched(OVERDUE_PATCH)) and not self._retry_requested:
                # D9: overdue counts from the invoice's date. With a retry already queued, the next attempt reports.
                await self._notify_org(request, paid=False)
            await self._email(request, "payment_failed", f"payment_failed:{request.invoice_number}:{attempt}", outcome)
            await self._tell_origin(request, outcome)
            self._show(outcome.status, f"Attempt {attempt} failed ({outcome.failure_code}). Waiting for a retry "
                       "signal (customer retry from the e-mail or invoice, SPEC F3)", waiting_for="retry")
            self._busy = False
            await workflow.wait_condition(lambda: self._retry_requested or self._settled)
            self._retry_requested = False
            if self._settled:  # PAY NOW, a wire/ACH payment or forgiveness settled it meanwhile
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._state

    async def _without_charging(self, request: ChargeInvoiceInput) -> PaymentState:
        """Modes await and serve: nothing is charged unless the customer pays on-session (SPEC D10, G2)."""
        self._state.outstanding = request.amount if request.mode == "await" else Decimal("0")
        if request.mode == "await":
            self._show(PaymentStatus.NEW, f"{request.invoice_number}: {request.amount} {request.currency} to be paid "
                       "by wire/ACH transfer or PAY NOW; waiting (an operator may forgive it)", waiting_for="payment")
            await self._notify_org(request, paid=False)  # D9: an unpaid invoice goes overdue like any other
            self._busy = False
            await workflow.wait_condition(lambda: self._settled)
        self._busy = False
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    def _require_outstanding(self, action: str) -> None:
        """Refuse `action` on an invoice with nothing left to pay (NothingToDo: a repeat is harmless)."""
        if self._settled or self._state.outstanding == 0:
            state = "forgiven" if self._state.forgiven else "paid"
            raise ApplicationError(f"nothing to {action}: {self._state.invoice_number} is {state}", type="NothingToDo",
                                   non_retryable=True)

    def _check_idle(self) -> None:
        """Refuse an operation while the run's own attempt is in flight (two charges at once). A run started with
        the operation (update-with-start) has not begun yet: nothing is in flight."""
        if not self._running:
            return
        in_flight = (self._request.mode == "charge" and self._busy) or self._state.status in (
            PaymentStatus.PROCESSING, PaymentStatus.PENDING_REVERSAL)
        if in_flight:
            raise ValueError(f"a payment attempt for {self._state.invoice_number} is in progress "
                             f"({self._state.status.value}): try again when it has finished")

    @asynccontextmanager
    async def _operation(self, action: str | None) -> AsyncIterator[None]:
        """One operation (PAY NOW, a payment recorded, forgiveness, a refund) at a time, each on an open invoice
        unless `action` is None."""
        async with self._lock:
            await workflow.wait_condition(lambda: self._running)  # the run may start after the update
            if action is not None:
                self._require_outstanding(action)
            yield

    @workflow.update
    async def pay_now(self, request: PayNow) -> PaymentState:
        """SPEC G2/E2: charge the method on file on-session, the customer authenticating with the issuer, so an RBI
        mandate's cap does not apply. Each attempt has its own idempotency key <invoice>:<attempt> (M3)."""
        async with self._operation("pay"):
            req = self._request
            amount = self._state.outstanding if self._state.outstanding is not None else req.amount
            attempt = self._state.attempts + 1
            self._state.attempts = attempt
            self._show(PaymentStatus.NEW, f"PAY NOW by {request.requested_by}: charging {amount} {req.currency} "
                       f"on-session (attempt {attempt})")
            prepared = await workflow.execute_activity_method(
                RbiActivities.prepare_charge, PrepareRequest(org_id=req.org_id, register_mandate=False,
                                                             at=clock.now()),
                **ISSUER)
            charge_currency, fx_rate = None, None
            if prepared.charge_currency not in (None, req.currency):
                fx = await self._read(FxActivities.fx_rate,
                                      FxRequest(currency=prepared.charge_currency, at=clock.now()))
                charge_currency, fx_rate = prepared.charge_currency, fx.rate
            outcome = await workflow.execute_activity_method(
                PaymentActivities.charge_payment,
                ChargeRequest(org_id=req.org_id, invoice_id=req.invoice_id, invoice_number=req.invoice_number,
                              attempt=attempt, idempotency_key=f"{req.invoice_number}:{attempt}", amount=amount,
                              currency=req.currency, at=clock.now(), refundable=req.refundable,
                              charge_currency=charge_currency, fx_rate=fx_rate, on_session=True),
                **GATEWAY)
            self._state.payments.append(outcome)
            self._state.failure_code = outcome.failure_code
            if outcome.status == PaymentStatus.PAID:
                await self._received(req, amount, f"payment_succeeded:{req.invoice_number}:{attempt}", outcome)
                await self._tell_origin(req, outcome)
            else:
                await self._email(req, "payment_failed", f"payment_failed:{req.invoice_number}:{attempt}", outcome)
                self._show(outcome.status, f"PAY NOW attempt {attempt} failed ({outcome.failure_code})",
                           waiting_for="retry" if req.mode == "charge" else "payment")
            return self._state

    @pay_now.validator
    def _validate_pay_now(self, request: PayNow) -> None:
        self._check_idle()

    @workflow.update
    async def record_payment(self, request: RecordPayment) -> PaymentState:
        """SPEC D10: a wire or ACH payment received; a partial one leaves the rest outstanding."""
        async with self._operation("pay"):
            req = self._request
            attempt = self._state.attempts + 1
            self._state.attempts = attempt
            outcome = await self._activity(
                PaymentActivities.record_manual_payment,
                ManualPayment(org_id=req.org_id, invoice_id=req.invoice_id, invoice_number=req.invoice_number,
                              attempt=attempt, method=request.method, amount=request.amount, at=clock.now(),
                              recorded_by=request.recorded_by, reference=request.reference))
            self._state.payments.append(outcome)
            left = (self._state.outstanding if self._state.outstanding is not None else req.amount) - request.amount
            self._state.outstanding = left
            if left == 0:
                await self._received(req, request.amount, f"payment_succeeded:{req.invoice_number}:{attempt}",
                                     outcome)
            else:
                self._show(self._state.status, f"{request.amount} {req.currency} received by {request.method}; "
                           f"{left} {req.currency} still to be paid", waiting_for=self._state.waiting_for)
            return self._state

    @record_payment.validator
    def _validate_record_payment(self, request: RecordPayment) -> None:
        self._check_idle()
        if not self._running:
            return
        left = self._state.outstanding if self._state.outstanding is not None else self._request.amount
        if request.amount > left:
            raise ValueError(f"{request.amount} is more than the {left} {self._request.currency} outstanding on "
                             f"{self._state.invoice_number}")

    @workflow.update
    async def forgive(self, request: Forgive) -> PaymentState:
        """SPEC D10: an operator forgives what is outstanding (FORGIVEN), audited: who and why."""
        async with self._operation("forgive"):
            req = self._request
            forgiven = await self._activity(
                PaymentActivities.forgive_invoice,
                Forgiveness(org_id=req.org_id, invoice_id=req.invoice_id, invoice_number=req.invoice_number,
                            reason=request.reason, forgiven_by=request.forgiven_by, at=clock.now()))
            self._state.outstanding, self._state.forgiven, self._settled = Decimal("0"), True, True
            await self._notify_org(req, paid=True)  # no longer overdue (D9)
            self._show(self._state.status, f"Forgiven by {request.forgiven_by}: {forgiven.amount} "
                       f"{forgiven.currency} ({request.reason})")
            return self._state

    @forgive.validator
    def _validate_forgive(self, request: Forgive) -> None:
        self._check_idle()

    @workflow.update
    async def refund(self, request: Refund) -> PaymentState:
        """SPEC D10: refund the invoice's card/PayPal charges (gateway refund, one idempotency key per charge);
        D2's non-refundable charges are refused."""
        async with self._operation(None):
            req = self._request
            refunded = await self._activity(
                PaymentActivities.refund_payment,
                RefundRequest(org_id=req.org_id, invoice_id=req.invoice_id, invoice_number=req.invoice_number,
                              requested_by=request.requested_by, at=clock.now()))
            known = {p.payment_id for p in self._state.payments}
            self._state.payments += [p for p in refunded.payments if p.payment_id not in known]
            self._show(PaymentStatus.REFUNDED, f"Refunded to the customer at the request of {request.requested_by}")
            return self._state

    @refund.validator
    def _validate_refund(self, request: Refund) -> None:
        self._check_idle()

    async def _activity(self, method, arg):
        """An activity whose business refusal (a non-retryable ApplicationError) fails the update, not the run."""
        try:
            return await workflow.execute_activity_method(method, arg, **GATEWAY)
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise

    async def _received(self, req: ChargeInvoiceInput, amount: Decimal, key: str, outcome: ChargeOutcome) -> None:
        """Everything outstanding is paid: the organization hears of it (D9), the customer gets a receipt."""
        self._state.outstanding, self._settled = Decimal("0"), True
        await self._notify_org(req, paid=True)
        self._show(PaymentStatus.PAID, f"Paid: {amount} {req.currency} by {outcome.method}; sending the receipt")
        await self._email(req, "payment_succeeded", key, outcome.model_copy(update={"amount": amount,
                                                                                    "currency": req.currency}))
        self._show(PaymentStatus.PAID, f"Paid {amount} {req.currency} by {outcome.method}", waiting_for=None)

    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        """SPEC F3/H3: a retry is a signal. One that arrives while an attempt is in flight is kept: it applies
        if that attempt fails (re-authentication racing a customer's retry collects once, charges once)."""
        if self._state.status == PaymentStatus.PAID or self._settled:
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
                                                       **GATEWAY)
            elif charge not in self._outcomes:
                status = await workflow.execute_activity_method(
                    RbiActivities.withdraw_unauthorized, PaymentRef(payment_id=outcome.payment_id, at=clock.now()),
                    **GATEWAY)
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
            **GATEWAY)
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
            **GATEWAY)

    async def _reverse(self, outcome: ChargeOutcome) -> None:
        if self._state.status == PaymentStatus.PENDING_REVERSAL:
            return
        await workflow.execute_activity_method(RbiActivities.mark_pending_reversal,
                                               PaymentRef(payment_id=outcome.payment_id, at=clock.now()),
                                               **GATEWAY)
        self._show(PaymentStatus.PENDING_REVERSAL, "Pending reversal: refunded if the issuer's outcome is a "
                   "success, cancelled if it is a failure (SPEC E6)", waiting_for="issuer")

    async def _rest(self, condition, until=None) -> None:
        self._busy = False
        try:
            timeout = None if until is None else max(until - clock.now(), timedelta(0))
            await workflow.wait_condition(condition, timeout=timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._busy = True

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
    def state(self) -> PaymentState:
        return self._state

    def _show(self, status: PaymentStatus, details: str, waiting_for: str | None = None) -> None:
        """The operator's view (SPEC H2): the status and what the payment waits for as search attributes, and the
        current details in words."""
        self._state.status = status
        self._state.waiting_for = waiting_for
        shown = (status.value, waiting_for or "nothing")
        if shown != self._shown or not self._lean:
            workflow.upsert_search_attributes([PAYMENT_STATUS.value_set(shown[0]),
                                               PAYMENT_WAITING_FOR.value_set(shown[1])])
            self._shown = shown
        workflow.set_current_details(details)

    async def _charge(self, request: ChargeRequest) -> ChargeOutcome:
        """The charge, keyed by invoice and attempt (M3). In lean runs the first attempt's is a local activity: the
        month-end's charge and its e-mail are one workflow task. Run again after a crash, it finds the attempt's
        payment row and asks the gateway by key before charging (activities/payments.py), as a retried regular
        activity does. Later attempts (a customer's retry, re-authentication) stay regular activities: a retry signal
        that arrives while one is charging is seen when it ends (retry()), not after the workflow task."""
        if self._lean and request.attempt == 1:
            return await workflow.execute_local_activity_method(PaymentActivities.charge_payment, request, **GATEWAY)
        return await workflow.execute_activity_method(PaymentActivities.charge_payment, request, **GATEWAY)

    async def _read(self, method, arg):
        """A read of our database: a local activity in lean runs (no server round trip)."""
        if self._lean:
            return await workflow.execute_local_activity_method(method, arg, **LOCAL)
        return await workflow.execute_activity_method(method, arg, **GATEWAY)

    async def _email(self, request: ChargeInvoiceInput, kind: str, key: str, outcome: ChargeOutcome,
                     **extra: str) -> None:
        data = {"invoice": request.invoice_number, "period": request.period, "amount": str(outcome.amount),
                "currency": outcome.currency, **extra}
        if outcome.failure_code:
            data["failure_code"] = outcome.failure_code
        email = EmailRequest(key=key, org_id=request.org_id, kind=kind, data=data, at=clock.now())
        if self._lean:  # keyed, so a local activity retried after a crash still sends it once
            await workflow.execute_local_activity_method(EmailActivities.send_email, email, **EMAIL)
        else:
            await workflow.execute_activity_method(EmailActivities.send_email, email, **EMAIL)
