"""Starting one workflow from another through an activity, by business-key ID (SPEC H1).

Settlement hands each invoice to its own payment workflow this way rather than as a child: the
payment outlives the settlement (it may wait weeks for a retry), and the time-skipping test server
cannot skip time after an abandoned child starts (temporalio/sdk-java#2392).
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.payment import ChargeInvoiceInput, PaymentWorkflow
from workflows.shared import BILLING_PERIOD, INVOICE_ID, ORG_ID, PAYMENT_STATUS, payment_workflow_id


class StartedWorkflow(BaseModel):
    workflow_id: str
    already_started: bool


async def start_payment_workflow(client: Client, task_queue: str, request: ChargeInvoiceInput) -> StartedWorkflow:
    """One payment workflow per invoice, ever: a second start finds the first."""
    workflow_id = payment_workflow_id(request.invoice_number)
    try:
        await client.start_workflow(
            PaymentWorkflow.run, request, id=workflow_id, task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(ORG_ID, request.org_id), SearchAttributePair(INVOICE_ID, request.invoice_number),
                SearchAttributePair(BILLING_PERIOD, request.period), SearchAttributePair(PAYMENT_STATUS, "NEW")]),
            static_summary=f"Payment of {request.invoice_number} ({request.amount} {request.currency})",
        )
    except WorkflowAlreadyStartedError:
        return StartedWorkflow(workflow_id=workflow_id, already_started=True)
    return StartedWorkflow(workflow_id=workflow_id, already_started=False)


class StartingActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name="start_payment_workflow")
    async def start_payment(self, request: ChargeInvoiceInput) -> StartedWorkflow:
        return await start_payment_workflow(self.client, self.task_queue, request)
