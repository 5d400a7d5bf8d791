"""Names shared by workflows, worker and starter: the task queue, search attributes and workflow IDs."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey

TASK_QUEUE = "billing"

# SPEC H2: operators find any flow by organization, invoice, payment status and billing period.
ORG_ID = SearchAttributeKey.for_keyword("OrgId")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
BILLING_PERIOD = SearchAttributeKey.for_keyword("BillingPeriod")
ORG_STATUS = SearchAttributeKey.for_keyword("OrgStatus")
PAYMENT_WAITING_FOR = SearchAttributeKey.for_keyword("PaymentWaitingFor")

SEARCH_ATTRIBUTES = [ORG_ID, INVOICE_ID, PAYMENT_STATUS, BILLING_PERIOD, ORG_STATUS, PAYMENT_WAITING_FOR]


# SPEC H1: workflow IDs are business keys, so a duplicate trigger is harmless.
def payment_workflow_id(invoice_number: str) -> str:
    return f"payment-{invoice_number}"


def settlement_workflow_id(org_id: str, period: str) -> str:
    return f"settlement-{org_id}-{period}"


SETTLEMENT_WORKFLOW = "SettlementWorkflow"


class SettleInput(BaseModel):
    """Input of SettlementWorkflow (here so the activity that starts settlements need not import it)."""

    org_id: str
    period: str  # YYYY-MM, the month being settled
