"""The one function that starts each workflow started from more than one place, by business-key ID (SPEC H1) and
with the configured durations (H4): the settlement and activation activities, the client, the CLI and the simulator
all start payments, settlements and organizations' workflows through these. Workflows are named by type, so
nothing here imports a workflow."""

from __future__ import annotations

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy,
                               WorkflowIDReusePolicy)
from temporalio.exceptions import WorkflowAlreadyStartedError

from billing.config import BillingDurations
from contracts.flows import (BILLING_PERIOD, INVOICE_ID, ORG_BILLING_WORKFLOW, ORG_ID, ORG_STATUS, PAYMENT_STATUS,
                             PAYMENT_WAITING_FOR, PAYMENT_WORKFLOW, SETTLEMENT_WORKFLOW, SettleInput,
                             org_billing_workflow_id, payment_workflow_id, settlement_workflow_id)
from contracts.organization import OrgBillingInput
from contracts.payments import ChargeInvoiceInput
from contracts.starting import StartedWorkflow


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
        await client.start_workflow(PAYMENT_WORKFLOW, request, id=workflow_id, task_queue=task_queue,
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
        PAYMENT_WORKFLOW, request, id=payment_workflow_id(request.invoice_number), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        **_visible(request))


def _visible(request: ChargeInvoiceInput) -> dict:
    """Search attributes and summary: operators find the payment by organization, invoice and period (SPEC H2)."""
    return {"search_attributes": TypedSearchAttributes([
                SearchAttributePair(ORG_ID, request.org_id), SearchAttributePair(INVOICE_ID, request.invoice_number),
                SearchAttributePair(BILLING_PERIOD, request.period), SearchAttributePair(PAYMENT_STATUS, "NEW"),
                SearchAttributePair(PAYMENT_WAITING_FOR, "nothing")]),
            "static_summary": f"Payment of {request.invoice_number} ({request.amount} {request.currency})"}


async def start_settlement_workflow(client: Client, task_queue: str, org_id: str, period: str,
                                    invoice_number: str | None = None) -> bool:
    """Start the settlement of one organization and period; False if it was already started (H1).

    invoice_number: the number of the cycle's PENDING invoice the settlement closes (G0), when there is one. Set at
    start, the operator finds the settlement by it from the first moment, and the workflow need not upsert it (one
    visibility write fewer per organization, docs/scale.md)."""
    attributes = [SearchAttributePair(ORG_ID, org_id), SearchAttributePair(BILLING_PERIOD, period)]
    if invoice_number is not None:
        attributes.append(SearchAttributePair(INVOICE_ID, invoice_number))
    try:
        await client.start_workflow(
            SETTLEMENT_WORKFLOW, SettleInput(org_id=org_id, period=period),
            id=settlement_workflow_id(org_id, period), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(attributes),
            static_summary=f"Month-end settlement of {org_id} for {period}")
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_org_billing(client: Client, task_queue: str, org_id: str, durations: BillingDurations,
                            **signal: object) -> None:
    """Start the organization's workflow if it is not running (with a signal: signal-with-start)."""
    try:
        await client.start_workflow(
            ORG_BILLING_WORKFLOW, OrgBillingInput(org_id=org_id, overdue_suspend=durations.overdue_suspend,
                                                    overdue_lock=durations.overdue_lock),
            id=org_billing_workflow_id(org_id), task_queue=task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id),
                                                     SearchAttributePair(ORG_STATUS, "ACTIVE")]),
            static_summary=f"Billing of organization {org_id}: payment method, SCA, overdue invoices", **signal)
    except WorkflowAlreadyStartedError:
        pass
