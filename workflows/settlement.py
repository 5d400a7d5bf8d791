"""Month-end settlement of one organization and period: close the cloud invoice, tax it, then have it paid."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.invoices import CloseInvoiceRequest, FinalizeRequest, InvoiceActivities, InvoiceSummary
    from activities.tax import TaxActivities, TaxRequest
    from billing.invoicing import last_day_of
    from billing.tax import Product
    from activities.starting import StartingActivities
    from workflows.payment import ChargeInvoiceInput
    from workflows.shared import INVOICE_ID

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


class SettleInput(BaseModel):
    org_id: str
    period: str  # YYYY-MM, the month being settled


class SettleResult(BaseModel):
    invoice: InvoiceSummary
    payment_workflow_id: str | None = None


@workflow.defn
class SettlementWorkflow:
    @workflow.run
    async def run(self, request: SettleInput) -> SettleResult:
        workflow.set_current_details(f"Closing the {request.period} cloud invoice of {request.org_id}")
        invoice = await workflow.execute_activity_method(
            InvoiceActivities.close_cloud_invoice,
            CloseInvoiceRequest(org_id=request.org_id, period=request.period, at=workflow.now()),
            start_to_close_timeout=timedelta(minutes=5), retry_policy=RETRY,
        )
        workflow.upsert_search_attributes([INVOICE_ID.value_set(invoice.number)])
        if invoice.status == "PENDING":
            workflow.set_current_details(f"Computing the tax of {invoice.number}")
            tax = await workflow.execute_activity_method(
                TaxActivities.compute_tax,
                TaxRequest(org_id=request.org_id, product=Product.ATLAS, amount=invoice.billed_usage,
                           currency=invoice.currency, on=last_day_of(request.period)),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
            )
            invoice = await workflow.execute_activity_method(
                InvoiceActivities.finalize_invoice, FinalizeRequest(invoice_id=invoice.invoice_id, tax_lines=tax.lines),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
            )
        if invoice.amount_due <= 0:
            workflow.set_current_details(f"Invoice {invoice.number} is {invoice.status}: nothing to charge")
            return SettleResult(invoice=invoice)
        # The payment outlives the settlement, so it is its own workflow, started by business key.
        started = await workflow.execute_activity_method(
            StartingActivities.start_payment,
            ChargeInvoiceInput(org_id=request.org_id, invoice_id=invoice.invoice_id, invoice_number=invoice.number,
                               period=request.period, amount=invoice.amount_due, currency=invoice.currency),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
        )
        workflow.set_current_details(f"Invoice {invoice.number} closed; payment workflow {started.workflow_id} "
                                     + ("was already running" if started.already_started else "started"))
        return SettleResult(invoice=invoice, payment_workflow_id=started.workflow_id)
