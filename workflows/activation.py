"""The activation workflow (SPEC D2): one per organization and subscription code.

It issues the code, waits for it to be applied (an update whose validator refuses a wrong or used code),
and counts the grace period of 30 days of use; if the code has not been applied by then, the months held
so far are charged to the card on file, non-refundable. A lost code is re-issued without restarting the clock.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import date, datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.options import ACTIVITY, EMAIL
    from contracts import clock
    from contracts.activation import (ActivationActivities, FirstUsageRequest, HeldInvoice, IssueCodeRequest,
                                       OrgSubscription)
    from contracts.email import EmailActivities, EmailRequest
    from contracts.starting import StartingActivities
    from billing.activation import days_left, grace_ends_at
    from contracts.payments import ChargeInvoiceInput
    from contracts.flows import ACTIVATION_STATUS, GRACE_ENDS_AT

DETAILS_REFRESH = timedelta(days=1)  # operators read the days left; refreshed daily, not polled


class ActivationInput(BaseModel):
    org_id: str
    subscription_id: int
    grace: timedelta = timedelta(days=30)  # SPEC H4


class ApplyCode(BaseModel):
    code_hash: str  # the starter hashes the code the customer typed: the code never enters the history
    applied_by: str = "customer"


class UsageStarted(BaseModel):
    first_day: date


class ActivationState(BaseModel):
    status: str = "ISSUING"  # ISSUING | WAITING_FOR_USAGE | GRACE | GRACE_EXPIRED | APPLIED
    codes_issued: int = 0
    first_usage_on: date | None = None
    grace_ends_at: datetime | None = None
    applied_at: datetime | None = None
    charged_invoices: list[str] = []  # charged to the card, non-refundable, when the grace period ended


@workflow.defn
class ActivationWorkflow:
    @workflow.init
    def __init__(self, request: ActivationInput) -> None:
        self._request = request  # before any handler runs: an update may arrive in the first activation
        self._state = ActivationState()
        self._code_hash: str | None = None
        self._applied = False
        self._reissues_wanted = 0
        self._usage_started: date | None = None
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, request: ActivationInput) -> ActivationState:
        await self._issue()
        window = await workflow.execute_activity_method(
            ActivationActivities.first_usage,
            FirstUsageRequest(org_id=request.org_id, subscription_id=request.subscription_id, grace=request.grace),
            **ACTIVITY)
        first_usage = window.first_usage_on
        while first_usage is None and not self._applied:
            self._show("WAITING_FOR_USAGE", "Code issued; the 30 days of use start with the first usage")
            await self._wait(lambda: self._usage_started is not None or self._applied)
            first_usage = self._usage_started
        if not self._applied:
            self._state.first_usage_on = first_usage
            self._state.grace_ends_at = grace_ends_at(first_usage, request.grace)
            workflow.upsert_search_attributes([GRACE_ENDS_AT.value_set(self._state.grace_ends_at)])
            while not self._applied and clock.now() < self._state.grace_ends_at:
                left = days_left(self._state.grace_ends_at, clock.now())
                self._show("GRACE", f"Waiting for the activation code: {left} day(s) of the grace period left "
                                    f"(ends {self._state.grace_ends_at:%Y-%m-%d %H:%M} UTC)")
                await self._wait(lambda: self._applied,
                                 timeout=min(DETAILS_REFRESH, self._state.grace_ends_at - clock.now()))
        if not self._applied:
            await self._end_grace()
            self._show("GRACE_EXPIRED", "Grace period over: usage is charged to the card, non-refundable, "
                                        "until the code is applied")
            await self._wait(lambda: self._applied)
        await self._activate()
        return self._state

    async def _wait(self, condition, timeout: timedelta | None = None) -> None:
        """Rest until `condition` (or the timeout), serving re-issue requests meanwhile."""
        while True:
            try:
                await workflow.wait_condition(lambda: condition() or self._reissues_wanted > 0, timeout=timeout)
            except asyncio.TimeoutError:
                return
            if self._reissues_wanted > 0 and not self._applied:
                await self._issue()
                continue
            return

    async def _issue(self) -> None:
        async with self._lock:
            self._reissues_wanted = 0
            issue = self._state.codes_issued + 1
            issued = await workflow.execute_activity_method(
                ActivationActivities.issue_code,
                IssueCodeRequest(org_id=self._request.org_id, subscription_id=self._request.subscription_id,
                                 issue=issue, grace=self._request.grace, at=clock.now()), **ACTIVITY)
            self._code_hash, self._state.codes_issued = issued.code_hash, issue

    async def _end_grace(self) -> None:
        outcome = await workflow.execute_activity_method(
            ActivationActivities.end_grace, OrgSubscription(org_id=self._request.org_id,
                                                            subscription_id=self._request.subscription_id,
                                                            at=clock.now()), **ACTIVITY)
        await self._charge(outcome.to_charge, refundable=False)
        self._state.charged_invoices = [invoice.number for invoice in outcome.to_charge]

    async def _activate(self) -> None:
        outcome = await workflow.execute_activity_method(
            ActivationActivities.activate, OrgSubscription(org_id=self._request.org_id,
                                                           subscription_id=self._request.subscription_id,
                                                           at=clock.now()), **ACTIVITY)
        await self._charge(outcome.to_charge, refundable=True)
        self._state.applied_at = clock.now()
        self._show("APPLIED", f"Subscription activated on {clock.now():%Y-%m-%d}")
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(key=f"activation_confirmed:{self._request.subscription_id}", org_id=self._request.org_id,
                         kind="activation_confirmed", at=clock.now(),
                         data={"subscription": outcome.subscription_type.replace("_", " ")}), **EMAIL)

    async def _charge(self, invoices: list[HeldInvoice], refundable: bool) -> None:
        for invoice in invoices:
            await workflow.execute_activity_method(
                StartingActivities.start_payment,
                ChargeInvoiceInput(org_id=self._request.org_id, invoice_id=invoice.invoice_id,
                                   invoice_number=invoice.number, period=invoice.period, amount=invoice.amount_due,
                                   currency=invoice.currency, refundable=refundable), **ACTIVITY)

    def _show(self, status: str, details: str) -> None:
        self._state.status = status
        workflow.upsert_search_attributes([ACTIVATION_STATUS.value_set(status)])
        workflow.set_current_details(details)

    @workflow.update
    async def apply_code(self, request: ApplyCode) -> ActivationState:
        self._applied = True
        await workflow.wait_condition(lambda: self._state.status == "APPLIED")
        return self._state

    @apply_code.validator
    def _validate_code(self, request: ApplyCode) -> None:
        if self._applied:
            raise ValueError("this subscription's activation code has already been applied")
        if self._code_hash is None or not hmac.compare_digest(request.code_hash, self._code_hash):
            raise ValueError("wrong activation code: check the latest code e-mailed to the billing contact")

    @workflow.update
    async def reissue_code(self) -> int:
        """A lost code is re-issued through support: the old code stops working; the clock does not restart."""
        self._reissues_wanted += 1
        wanted = self._state.codes_issued + 1
        await workflow.wait_condition(lambda: self._state.codes_issued >= wanted)
        return self._state.codes_issued

    @reissue_code.validator
    def _validate_reissue(self) -> None:
        if self._applied:
            raise ValueError("the code was already applied: there is nothing to re-issue")

    @workflow.signal
    def usage_started(self, usage: UsageStarted) -> None:
        if self._usage_started is None:
            self._usage_started = usage.first_day

    @workflow.query
    def state(self) -> ActivationState:
        return self._state
