"""Starting one workflow from another through an activity, by business-key ID (SPEC H1).

Settlement hands each invoice to its own payment workflow this way rather than as a child: the
payment outlives the settlement (it may wait weeks for a retry), and the time-skipping test server
cannot skip time after an abandoned child starts (temporalio/sdk-java#2392).
"""

from __future__ import annotations

import asyncio
import time

from sqlmodel import select
from temporalio import activity
from temporalio.client import Client

from billing.config import BillingDurations
from store.db import Database
from billing.invoicing import period_end
from activities.payments import outstanding
from store.cycle import cloud_invoice_key_sql
from store.tables import Invoice, Organization
from contracts.payments import ChargeInvoiceInput
from contracts.start import start_payment_workflow, start_settlement_workflow
from contracts.starting import StartedWorkflow, StartSettlementsRequest, StartSettlementsPage  # noqa: F401

SETTLEMENT_START_CONCURRENCY = 50


class StartingActivities:
    def __init__(self, client: Client, task_queue: str, db: Database, durations: BillingDurations,
                 start_rate: float = 0.0) -> None:
        self.client = client
        self.task_queue = task_queue
        self.db = db
        self.durations = durations
        # Settlements started per second (BILLING_MONTH_END_START_RATE); 0: as fast as the concurrency allows.
        # Each settlement charges at most once, at once: the start rate bounds the month-end's charges per second,
        # which the gateway's rate limit caps (docs/scale.md). The month-end runs one page at a time, so one
        # activity paces the whole fleet.
        self.start_rate = start_rate

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
        page = await asyncio.to_thread(self._org_page, request)
        gate = asyncio.Semaphore(SETTLEMENT_START_CONCURRENCY)
        began = time.monotonic()

        async def start(i: int, org_id: str, invoice_number: str | None) -> bool:
            if self.start_rate > 0:  # the i-th start of the page no earlier than i / rate seconds in
                await asyncio.sleep(max(0.0, began + i / self.start_rate - time.monotonic()))
            async with gate:
                started = await start_settlement_workflow(self.client, self.task_queue, org_id, request.period,
                                                          invoice_number)
                activity.heartbeat(org_id)
                return started

        results = await asyncio.gather(*(start(i, org_id, number) for i, (org_id, number) in enumerate(page)))
        return StartSettlementsPage(started=sum(results), already_started=len(results) - sum(results),
                                    last_org_id=page[-1][0] if page else None)

    def _org_page(self, request: StartSettlementsRequest) -> list[tuple[str, str | None]]:
        """The page's organizations, each with the number of the cloud invoice its cycle opened for the period
        (G0), None where there is none (an organization whose cycle predates G0 gets its number at settlement)."""
        ended = period_end(request.period)
        with self.db.session() as s:
            query = (select(Organization.id, Invoice.number)
                     .outerjoin(Invoice, Invoice.key == cloud_invoice_key_sql(Organization.id, request.period))
                     .where(Organization.created_at < ended))
            if request.after_org_id is not None:
                query = query.where(Organization.id > request.after_org_id)
            return [(org_id, number) for org_id, number in
                    s.exec(query.order_by(Organization.id).limit(request.limit)).all()]
