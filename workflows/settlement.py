"""Month-end settlement of one organization and period: the cloud invoice, its tax, credits and the tax invoice,
then the payment of whatever credits and the subscription leave to the card (SPEC D1-D8)."""

from __future__ import annotations


from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.options import EMAIL, LOCAL
    from contracts import clock
    from contracts.email import EmailActivities, EmailRequest
    from contracts.invoices import InvoiceActivities, SettleInvoiceRequest
    from contracts.starting import StartingActivities
    from contracts.payments import ChargeInvoiceInput
    from contracts.flows import INVOICE_ID, SETTLEMENT_WORKFLOW, SettleInput, SettleResult
    from billing.statuses import BillingMode, InvoiceStatus

# Database work runs as local activities: no server round trip each, which is what lets 10,000
# organizations settle at more than the rate of a bare three-activity workflow.
INVOICED_PATCH = "invoiced-payment-workflow"  # settlements recorded before it started no workflow for INVOICED


@workflow.defn(name=SETTLEMENT_WORKFLOW)
class SettlementWorkflow:
    @workflow.run
    async def run(self, request: SettleInput) -> SettleResult:
        workflow.set_current_details(f"Closing the {request.period} cloud invoice of {request.org_id}")
        # Close, support, tax, fx and the tax invoice in one local activity and one transaction.
        invoice = await workflow.execute_local_activity_method(
            InvoiceActivities.settle_cloud_invoice,
            SettleInvoiceRequest(org_id=request.org_id, period=request.period, at=clock.now()), **LOCAL)
        if workflow.info().typed_search_attributes.get(INVOICE_ID) != invoice.number:
            # Set at start from the cycle's PENDING invoice (G0); upserted only where there was none (or, replaying a
            # history started before the start set it, where the start did not).
            workflow.upsert_search_attributes([INVOICE_ID.value_set(invoice.number)])
        if invoice.tax_invoice is not None:
            workflow.set_current_details(f"E-mailing tax invoice {invoice.tax_invoice.number}")
            await workflow.execute_activity_method(
                EmailActivities.send_email,
                EmailRequest(key=f"tax_invoice:{invoice.tax_invoice.number}", org_id=request.org_id, kind="tax_invoice",
                             at=clock.now(), data={"invoice": invoice.tax_invoice.number, "period": request.period,
                                                      "amount": str(invoice.tax_invoice.total),
                                                      "amount_due": str(invoice.tax_invoice.amount_due),
                                                      "currency": invoice.tax_invoice.currency,
                                                      "cloud_invoice": invoice.number}), **EMAIL)
        if invoice.status == InvoiceStatus.INVOICED and workflow.patched(INVOICED_PATCH):
            # D10: paid by wire/ACH (or PAY NOW) through its payment workflow, which charges nothing meanwhile and
            # reports the invoice unpaid, so D9's overdue timers apply.
            started = await workflow.execute_local_activity_method(
                StartingActivities.start_payment,
                ChargeInvoiceInput(org_id=request.org_id, invoice_id=invoice.invoice_id, invoice_number=invoice.number,
                                   period=request.period, amount=invoice.amount_due, currency=invoice.currency,
                                   refundable=invoice.refundable, mode="await"), **LOCAL)
            workflow.set_current_details(f"Invoice {invoice.number} is INVOICED: payment workflow {started.workflow_id} "
                                         "waits for the transfer")
            return SettleResult(invoice=invoice, payment_workflow_id=started.workflow_id)
        if invoice.amount_due <= 0 or not BillingMode(invoice.billing_mode).charged_to_card:
            workflow.set_current_details(f"Invoice {invoice.number} is {invoice.status}: nothing to charge to a card")
            return SettleResult(invoice=invoice)
        # The payment outlives the settlement, so it is its own workflow, started by business key.
        started = await workflow.execute_local_activity_method(
            StartingActivities.start_payment,
            ChargeInvoiceInput(org_id=request.org_id, invoice_id=invoice.invoice_id, invoice_number=invoice.number,
                               period=request.period, amount=invoice.amount_due, currency=invoice.currency,
                               refundable=invoice.refundable), **LOCAL)
        workflow.set_current_details(f"Invoice {invoice.number} closed; payment workflow {started.workflow_id} "
                                     + ("was already running" if started.already_started else "started"))
        return SettleResult(invoice=invoice, payment_workflow_id=started.workflow_id)
