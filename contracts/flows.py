"""Names shared by workflows, activities and starters: the task queue, search attributes, workflow types and IDs."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey

from contracts.invoices import InvoiceSummary

TASK_QUEUE = "billing"

# SPEC H2: operators find any flow by organization, invoice, payment status and billing period.
ORG_ID = SearchAttributeKey.for_keyword("OrgId")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
BILLING_PERIOD = SearchAttributeKey.for_keyword("BillingPeriod")
ORG_STATUS = SearchAttributeKey.for_keyword("OrgStatus")
PAYMENT_WAITING_FOR = SearchAttributeKey.for_keyword("PaymentWaitingFor")
ACTIVATION_STATUS = SearchAttributeKey.for_keyword("ActivationStatus")  # GRACE | GRACE_EXPIRED | APPLIED
GRACE_ENDS_AT = SearchAttributeKey.for_datetime("GraceEndsAt")  # operators list who is in grace, and until when

SEARCH_ATTRIBUTES = [ORG_ID, INVOICE_ID, PAYMENT_STATUS, BILLING_PERIOD, ORG_STATUS, PAYMENT_WAITING_FOR,
                     ACTIVATION_STATUS, GRACE_ENDS_AT]


# SPEC H1: workflow IDs are business keys, so a duplicate trigger is harmless.
def payment_workflow_id(invoice_number: str) -> str:
    return f"payment-{invoice_number}"


def settlement_workflow_id(org_id: str, period: str) -> str:
    return f"settlement-{org_id}-{period}"


def org_billing_workflow_id(org_id: str) -> str:
    return f"org-billing-{org_id}"


def activation_workflow_id(org_id: str, subscription_id: int) -> str:
    return f"activation-{org_id}-{subscription_id}"


def month_end_workflow_id(period: str) -> str:
    return f"month-end-{period}"


def mandate_workflow_id(org_id: str, token: str) -> str:
    return f"mandate-{org_id}-{token}"


def checkout_workflow_id(org_id: str, purchase_id: str) -> str:
    return f"checkout-{org_id}-{purchase_id}"


def support_plan_workflow_id(org_id: str) -> str:
    return f"support-plan-{org_id}"


def delivery_workflow_id(event_id: str, endpoint_id: str) -> str:
    """SPEC I6: one delivery of one event to one endpoint; a resend is a new run of the same ID."""
    return f"delivery-{event_id}-{endpoint_id}"


# Each workflow type and the prefix of its IDs: the replay test requires recorded histories of every registered type.
ID_PREFIXES = {"PaymentWorkflow": "payment", "SettlementWorkflow": "settlement", "MonthEndWorkflow": "month-end",
               "ActivationWorkflow": "activation", "RegisterMandateWorkflow": "mandate",
               "OrgBillingWorkflow": "org-billing", "CheckoutWorkflow": "checkout", "SupportPlanWorkflow": "support-plan",
               "DeliveryWorkflow": "delivery"}


# Workflow types, for starting a workflow without importing it (contracts sit below the workflows).
SETTLEMENT_WORKFLOW = "SettlementWorkflow"
PAYMENT_WORKFLOW = "PaymentWorkflow"
ORG_BILLING_WORKFLOW = "OrgBillingWorkflow"
DELIVERY_WORKFLOW = "DeliveryWorkflow"


class SettleInput(BaseModel):
    """Input of SettlementWorkflow (here so the activity that starts settlements need not import it)."""

    org_id: str
    period: str  # YYYY-MM, the month being settled


class SettleResult(BaseModel):
    """Result of SettlementWorkflow (defined outside the workflow's module: the sandbox re-runs that module for
    every workflow, and building a model class each time is a measurable cost at 10,000 settlements)."""

    invoice: InvoiceSummary
    payment_workflow_id: str | None = None
