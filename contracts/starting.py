"""Contract of the starting activities: their names, inputs and results."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from contracts.payments import ChargeInvoiceInput


class StartedWorkflow(BaseModel):
    workflow_id: str
    already_started: bool


class StartSettlementsRequest(BaseModel):
    period: str
    after_org_id: str | None = None
    limit: int = 500


class StartSettlementsPage(BaseModel):
    started: int
    already_started: int
    last_org_id: str | None  # None: no organization after the cursor


class StartingActivities:
    """What workflows call (activities/starting.py implements it, registered under the same names)."""

    @activity.defn(name='start_payment_workflow')
    async def start_payment(self, request: ChargeInvoiceInput) -> StartedWorkflow:
        """The start_payment_workflow activity."""

    @activity.defn(name='start_settlements')
    async def start_settlements(self, request: StartSettlementsRequest) -> StartSettlementsPage:
        """One page of organizations (created before the period ended), their settlements started with bounded concurrency."""
