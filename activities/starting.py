"""Starting one workflow from another through an activity, by business-key ID (SPEC H1).

Settlement hands each invoice to its own payment workflow this way rather than as a child: the
payment outlives the settlement (it may wait weeks for a retry), and the time-skipping test server
cannot skip time after an abandoned child starts (temporalio/sdk-java#2392).
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy,
                               WorkflowIDReusePolicy)
from temporalio.exceptions import WorkflowAlreadyStartedError

from billing.config import BillingDurations
from store.db import Database
from billing.invoicing import period_end
from activities.payments import outstanding
from store.tables import Invoice, Organization
from workflows.payment import ChargeInvoiceInput, PaymentWorkflow
from workflows.shared import (BILLING_PERIOD, INVOICE_ID, ORG_ID, PAYMENT_STATUS, SETTLEMENT_WORKFLOW, SettleInput,
                              payment_workflow_id, settlement_workflow_id)

SETTLEMENT_START_CONCURRENCY = 50


class StartedWorkflow(BaseModel):
    workflow_id: str
    already_started: bool


def configured(request: ChargeInvoiceInput, durations: BillingDurations) -> ChargeInvoiceInput:
    """A payment's input with the configured durations (SPEC H4), whoever starts it."""
    return request.model_copy(update={"rbi_authorization_window": durations.rbi_authorization_window})


async def start_payment_workflow(client: Client, task_queue: str, durations: BillingDurations,
                                 request: ChargeInvoiceInput) -> StartedWorkflow:
    """The one way a payment workflow is started (settlement, activation, checkout, client, CLI), with the configured
    durations. One payment workflow per invoice while it runs: a second start finds the first."""
    request = configured(request, durations)
    workflow_id = payment_workflow_id(request.invoice_number)
    try:
        await client.start_workflow(PaymentWorkflow.run, request, id=workflow_id, task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, **_visible(request))
    except WorkflowAlreadyStartedError:
        return StartedWorkflow(workflow_id=workflow_id, already_started=True)
    return StartedWorkflow(workflow_id=workflow_id, already_started=False)


def payment_operation(task_queue: str, durations: BillingDurations,
                      request: ChargeInvoiceInput) -> WithStartWorkflowOperation:
    """An operation on an invoice's payment workflow (PAY NOW, a wire payment, forgiveness, a refund), sent with
    update-with-start: to the running workflow if there is one, else to a new run of the same business key
    (`request` says how that run begins), so money moves only inside the invoice's one payment flow (SPEC D10)."""
    request = configured(request, durations)
    return WithStartWorkflowOperation(
        PaymentWorkflow.run, request, id=payment_workflow_id(request.invoice_number), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        **_visible(request))


def _visible(request: ChargeInvoiceInput) -> dict:
    """Search attributes and summary: operators find the payment by organization, invoice and period (SPEC H2)."""
    return {"search_attributes": TypedSearchAttributes([
                SearchAttributePair(ORG_ID, request.org_id), SearchAttributePair(INVOICE_ID, request.invoice_number),
                SearchAttributePair(BILLING_PERIOD, request.period), SearchAttributePair(PAYMENT_STATUS, "NEW")]),
            "static_summary": f"Payment of {request.invoice_number} ({request.amount} {request.currency})"}


class StartSettlementsRequest(BaseModel):
    period: str
    after_org_id: str | None = None
    limit: int = 500


class StartSettlementsPage(BaseModel):
    started: int
    already_started: int
    last_org_id: str | None  # None: no organization after the cursor


async def start_settlement_workflow(client: Client, task_queue: str, org_id: str, period: str) -> bool:
    """Start the settlement of one organization and period; False if it was already started (H1)."""
    try:
        await client.start_workflow(
            SETTLEMENT_WORKFLOW, SettleInput(org_id=org_id, period=period),
            id=settlement_workflow_id(org_id, period), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id),
                                                     SearchAttributePair(BILLING_PERIOD, period)]),
            static_summary=f"Month-end settlement of {org_id} for {period}")
    except WorkflowAlreadyStartedError:
        return False
    return True


class StartingActivities:
    def __init__(self, client: Client, task_queue: str, db: Database, durations: BillingDurations) -> None:
        self.client = client
        self.task_queue = task_queue
        self.db = db
        self.durations = durations

    @activity.defn(name="start_payment_workflow")
    async def start_payment(self, request: ChargeInvoiceInput) -> StartedWorkflow:
        if request.mode == "await":  # what is outstanding on an INVOICED invoice is its invoiced amount (D10)
            request = request.model_copy(update={"amount": await asyncio.to_thread(self._outstanding,
                                                                                   request.invoice_id)})
        return await start_payment_workflow(self.client, self.task_queue, self.durations, request)

    def _outstanding(self, invoice_id: int):
        with self.db.session() as s:
            return outstanding(s.get(Invoice, invoice_id))

    @activity.defn(name="start_settlements")
    async def start_settlements(self, request: StartSettlementsRequest) -> StartSettlementsPage:
        """One page of organizations (created before the period ended), their settlements started with
        bounded concurrency."""
        org_ids = await asyncio.to_thread(self._org_page, request)
        gate = asyncio.Semaphore(SETTLEMENT_START_CONCURRENCY)

        async def start(org_id: str) -> bool:
            async with gate:
                started = await start_settlement_workflow(self.client, self.task_queue, org_id, request.period)
                activity.heartbeat(org_id)
                return started

        results = await asyncio.gather(*(start(org_id) for org_id in org_ids))
        return StartSettlementsPage(started=sum(results), already_started=len(results) - sum(results),
                                    last_org_id=org_ids[-1] if org_ids else None)

    def _org_page(self, request: StartSettlementsRequest) -> list[str]:
        ended = period_end(request.period)
        with self.db.session() as s:
            query = select(Organization.id).where(Organization.created_at < ended)
            if request.after_org_id is not None:
                query = query.where(Organization.id > request.after_org_id)
            return list(s.exec(query.order_by(Organization.id).limit(request.limit)).all())
