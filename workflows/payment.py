"""The payment workflow: charge an invoice, e-mail the outcome, and wait for a retry signal after a failure."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.payments import ChargeOutcome, ChargeRequest, PaymentActivities
    from billing.tables import PaymentStatus
    from workflows.shared import PAYMENT_STATUS, PAYMENT_WAITING_FOR

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


class RetryRequest(BaseModel):
    requested_by: str = "customer"


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

    @workflow.run
    async def run(self, request: ChargeInvoiceInput) -> PaymentState:
        self._state = PaymentState(invoice_number=request.invoice_number, status=PaymentStatus.NEW, attempts=0)
        self._show(PaymentStatus.NEW, f"Charging {request.amount} {request.currency} for {request.invoice_number}")
        while True:
            self._busy = True
            attempt = self._state.attempts + 1
            outcome = await workflow.execute_activity_method(
                PaymentActivities.charge_payment,
                ChargeRequest(org_id=request.org_id, invoice_id=request.invoice_id,
                              invoice_number=request.invoice_number, attempt=attempt,
                              idempotency_key=f"{request.invoice_number}:{attempt}", amount=request.amount,
                              currency=request.currency, at=workflow.now(), refundable=request.refundable),
                start_to_close_timeout=CHARGE_TIMEOUT, retry_policy=ACTIVITY_RETRY,
            )
            self._state.attempts = attempt
            self._state.payments.append(outcome)
            self._state.failure_code = outcome.failure_code
            if outcome.status == PaymentStatus.PAID:
                self._show(PaymentStatus.PAID, f"Paid on attempt {attempt}; sending the receipt")
                await self._email(request, "payment_succeeded", f"payment_succeeded:{request.invoice_number}",
                                  outcome)
                self._show(PaymentStatus.PAID, f"Paid {outcome.amount} {outcome.currency} on attempt {attempt}",
                           waiting_for=None)
                self._busy = False
                return self._state
            self._show(outcome.status, f"Attempt {attempt} failed ({outcome.failure_code}); e-mailing the billing recipients")
            await self._email(request, "payment_failed", f"payment_failed:{request.invoice_number}:{attempt}", outcome)
            self._show(outcome.status, f"Attempt {attempt} failed ({outcome.failure_code}). Waiting for a retry "
                       "signal (customer retry from the e-mail or invoice, SPEC F3)", waiting_for="retry")
            self._busy = False
            await workflow.wait_condition(lambda: self._retry_requested)
            self._retry_requested = False

    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        """SPEC F3/H3: a retry is a signal; it only counts while the payment waits after a failure."""
        if self._state is not None and self._state.waiting_for == "retry":
            workflow.logger.info("retry requested by %s", request.requested_by)
            self._retry_requested = True
            self._state.waiting_for = None
        else:
            workflow.logger.info("retry signal ignored: the payment is not waiting for one")

    @workflow.query
    def state(self) -> PaymentState | None:
        return self._state

    @workflow.update
    async def wait_idle(self) -> PaymentState:
        """Returns once the workflow waits on something outside itself (a signal), not on its own activities."""
        await workflow.wait_condition(lambda: not self._busy and not self._retry_requested)
        return self._state

    def _show(self, status: PaymentStatus, details: str, waiting_for: str | None = None) -> None:
        self._state.status = status
        self._state.waiting_for = waiting_for
        workflow.upsert_search_attributes([PAYMENT_STATUS.value_set(status.value),
                                           PAYMENT_WAITING_FOR.value_set(waiting_for or "nothing")])
        workflow.set_current_details(details)

    async def _email(self, request: ChargeInvoiceInput, kind: str, key: str, outcome: ChargeOutcome) -> None:
        data = {"invoice": request.invoice_number, "period": request.period, "amount": str(outcome.amount),
                "currency": outcome.currency}
        if outcome.failure_code:
            data["failure_code"] = outcome.failure_code
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(key=key, org_id=request.org_id, kind=kind, data=data, at=workflow.now()),
            start_to_close_timeout=EMAIL_TIMEOUT, retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
