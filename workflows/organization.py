"""The organization's billing entity workflow: payment-method updates with SCA re-authentication (SPEC F1-F2),
and overdue tracking that suspends and locks the organization (D9).

One per organization (ID org-billing-<org>), long-running; its state is one model carried over
continue-as-new. Payment workflows tell it which invoices are unpaid and when they are paid (signals);
timers, not polling, move the organization to SUSPENDED and LOCKED.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.options import ACTIVITY
    from contracts.organization import (OrgBillingInput, OrgBillingState, PaymentMethodUpdate,  # noqa: F401
                                        PaymentMethodUpdated)
    from contracts import clock
    from contracts.organization import (AttachRequest, InvoiceNotice, OrganizationActivities, OrgRef,
                                         StatusChange)
    from billing.statuses import OrgStatus
    from workflows.payment import PaymentWorkflow, RetryRequest
    from contracts.flows import ORG_BILLING_WORKFLOW, ORG_STATUS, payment_workflow_id

COLLECTION_WAIT = timedelta(minutes=10)  # how long an update waits for the retried payments to report back
EVENTS_PER_RUN = 500
MORE_THAN_PATCH = "overdue-more-than-whole-days"  # runs recorded before D9 counted whole days keep their deadlines


def overdue_from(invoice_date: datetime, after: timedelta) -> datetime:
    """D9: when an invoice dated `invoice_date` has been unpaid for *more than* `after`. Days are counted from the
    invoice's date, whole days: an invoice of 1 February is more than 30 days overdue from the start of day 31,
    4 March, not on day 30. A duration shorter than whole days (a demo's, H4) is counted exactly."""
    if after % timedelta(days=1):
        return invoice_date + after
    return datetime.combine(invoice_date.date(), time(0), tzinfo=invoice_date.tzinfo) + after + timedelta(days=1)


@workflow.defn(name=ORG_BILLING_WORKFLOW)
class OrgBillingWorkflow:
    @workflow.init
    def __init__(self, request: OrgBillingInput) -> None:
        # Set from the input here, not in run(): an update can arrive in the very first activation (H3).
        self._request = request
        self._state = request.state or OrgBillingState()
        self._changed = False
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, request: OrgBillingInput) -> None:
        while True:
            await self._reconcile()
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(deadline - clock.now(), timedelta(0))
            try:
                await workflow.wait_condition(lambda: self._changed or self._suggest_new_run(), timeout=timeout)
            except asyncio.TimeoutError:
                pass
            self._changed = False
            if self._suggest_new_run():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(OrgBillingInput(org_id=request.org_id, overdue_suspend=request.overdue_suspend,
                                                         overdue_lock=request.overdue_lock,
                                                         state=self._state.model_copy(update={"events": 0})))

    def _suggest_new_run(self) -> bool:
        return self._state.events >= EVENTS_PER_RUN or workflow.info().is_continue_as_new_suggested()

    def _next_deadline(self) -> datetime | None:
        if not self._state.unpaid or self._state.status == OrgStatus.LOCKED:
            return None
        oldest = min(self._state.unpaid.values())
        step = self._request.overdue_suspend if self._state.status == OrgStatus.ACTIVE else self._request.overdue_lock
        return self._overdue_from(oldest, step)

    @staticmethod
    def _overdue_from(invoice_date: datetime, after: timedelta) -> datetime:
        return overdue_from(invoice_date, after) if workflow.patched(MORE_THAN_PATCH) else invoice_date + after

    async def _reconcile(self) -> None:
        """Bring the status in line with the oldest unpaid invoice (D9)."""
        if not self._state.unpaid:
            target = OrgStatus.ACTIVE
        else:
            oldest, now = min(self._state.unpaid.values()), clock.now()
            target = (OrgStatus.LOCKED if now >= self._overdue_from(oldest, self._request.overdue_lock) else
                      OrgStatus.SUSPENDED if now >= self._overdue_from(oldest, self._request.overdue_suspend)
                      else self._state.status)
            if self._state.status != OrgStatus.ACTIVE and target == OrgStatus.ACTIVE:
                target = self._state.status
        if target == self._state.status:
            self._details()
            return
        async with self._lock:
            await workflow.execute_activity_method(
                OrganizationActivities.set_status,
                StatusChange(org_id=self._request.org_id, status=target, invoices=sorted(self._state.unpaid),
                             at=clock.now()), **ACTIVITY)
            self._state.status = target
        workflow.upsert_search_attributes([ORG_STATUS.value_set(target.value)])
        self._details()

    def _details(self) -> None:
        if not self._state.unpaid:
            workflow.set_current_details(f"{self._state.status.value}: nothing overdue")
            return
        oldest = min(self._state.unpaid.values())
        deadline = self._next_deadline()
        then = "" if deadline is None else (f"; {'suspended' if self._state.status == OrgStatus.ACTIVE else 'locked'} "
                                            f"at {deadline:%Y-%m-%d %H:%M} UTC unless paid")
        workflow.set_current_details(f"{self._state.status.value}: {len(self._state.unpaid)} unpaid invoice(s), "
                                     f"oldest from {oldest:%Y-%m-%d}{then}")

    @workflow.signal
    def invoice_notice(self, notice: InvoiceNotice) -> None:
        self._state.events += 1
        if notice.paid:
            self._state.unpaid.pop(notice.invoice, None)
        else:
            self._state.unpaid.setdefault(notice.invoice, notice.since)
        if notice.invoice in self._state.settled:
            self._state.settled[notice.invoice] = notice.paid
        self._changed = True

    @workflow.update
    async def update_payment_method(self, update: PaymentMethodUpdate) -> PaymentMethodUpdated:
        """F1/F2: attach the method; once it is authenticated, every failed payment is charged again."""
        async with self._lock:
            attached = await workflow.execute_activity_method(
                OrganizationActivities.attach,
                AttachRequest(org_id=self._request.org_id, method=update.method, authenticate=update.authenticate,
                              at=clock.now()), **ACTIVITY)
            if not attached.authenticated:
                return PaymentMethodUpdated(authenticated=False, retried=[], collected=0, still_failed=[])
            failed = await workflow.execute_activity_method(OrganizationActivities.failed_invoices,
                                                            OrgRef(org_id=self._request.org_id), **ACTIVITY)
            for number in failed:
                self._state.settled[number] = None
                # IDs are business keys: the payment's workflow follows from the invoice (H1, H3).
                await workflow.get_external_workflow_handle(payment_workflow_id(number)).signal(
                    PaymentWorkflow.retry, RetryRequest(requested_by=f"re-authentication by {update.requested_by}"))
        try:
            await workflow.wait_condition(lambda: all(self._state.settled.get(n) is not None for n in failed),
                                          timeout=COLLECTION_WAIT)
        except asyncio.TimeoutError:
            pass
        collected = [n for n in failed if self._state.settled.get(n)]
        for number in failed:
            self._state.settled.pop(number, None)
        return PaymentMethodUpdated(authenticated=True, retried=failed, collected=len(collected),
                                    still_failed=[n for n in failed if n not in collected])

    @update_payment_method.validator
    def _validate_method(self, update: PaymentMethodUpdate) -> None:
        method = update.method
        if not method.token:
            raise ValueError("payment_method: no tokenized method given")
        if method.kind == "card":
            today = clock.now().date()
            if method.exp_year is None or method.exp_month is None or \
                    date(method.exp_year + method.exp_month // 12, method.exp_month % 12 + 1, 1) <= today:
                raise ValueError("payment_method.exp: the card has expired")
        if update.authenticate and method.kind == "paypal":
            raise ValueError("authenticate: PayPal is approved at PayPal; there is no card to authenticate")

    @workflow.query
    def state(self) -> OrgBillingState:
        return self._state
