"""The month-end's start pacing (BILLING_MONTH_END_START_RATE): a page's settlements start no faster than the rate,
each once, and unpaced pages start at once. The rate is what keeps the month-end's charges under the gateway's
rate limit (docs/scale.md), since a settlement charges at most once."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from sqlmodel import select
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import ActivityEnvironment

from activities.starting import StartingActivities
from billing.config import BillingDurations
from contracts.flows import settlement_workflow_id
from contracts.starting import StartSettlementsRequest
from store.cycle import open_cycle
from store.tables import Invoice, Organization

CREATED = datetime(2027, 1, 5, tzinfo=timezone.utc)


class RecordingClient:
    """Stands in for the Temporal client: records when each workflow was started and with which search attributes;
    a second start is refused."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.attributes: dict[str, dict[str, object]] = {}

    async def start_workflow(self, workflow, arg, *, id, **options):  # noqa: A002, ANN001, ANN003, ANN201
        if id in self.started:
            raise WorkflowAlreadyStartedError(id, workflow)
        self.started[id] = time.monotonic()
        self.attributes[id] = {pair.key.name: pair.value for pair in options["search_attributes"]}


@pytest.fixture
def orgs(db):
    with db.session() as s:
        for i in range(12):
            s.add(Organization(id=f"org-{i:02d}", name=f"Org {i}", created_at=CREATED))
    return db


def page(activities: StartingActivities, limit: int = 500):
    return ActivityEnvironment().run(activities.start_settlements,
                                     StartSettlementsRequest(period="2027-01", limit=limit))


async def test_paced_starts_are_spread_at_the_rate(orgs):
    client = RecordingClient()
    activities = StartingActivities(client, "billing", orgs, BillingDurations(), start_rate=40.0)
    began = time.monotonic()
    result = await page(activities)
    assert (result.started, result.already_started, result.last_org_id) == (12, 0, "org-11")
    times = sorted(client.started.values())
    assert len(times) == 12
    # The i-th start no earlier than i / rate after the page began (a slow machine only starts them later).
    for i, at in enumerate(times):
        assert at - began >= i / 40.0 - 0.005, (i, at - began)


async def test_a_paced_page_sent_again_starts_nothing_twice(orgs):
    client = RecordingClient()
    activities = StartingActivities(client, "billing", orgs, BillingDurations(), start_rate=200.0)
    await page(activities)
    again = await page(activities)
    assert (again.started, again.already_started) == (0, 12)
    assert len(client.started) == 12


async def test_unpaced_starts_do_not_wait(orgs, monkeypatch):
    slept = []
    real_sleep = __import__("asyncio").sleep

    async def sleep(delay, *args):  # noqa: ANN001, ANN202
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("activities.starting.asyncio.sleep", sleep)
    client = RecordingClient()
    result = await page(StartingActivities(client, "billing", orgs, BillingDurations()))
    assert result.started == 12
    assert slept == []


async def test_settlements_start_findable_by_the_invoice_the_cycle_opened(orgs):
    """An operator looking for invoice INV-… finds its settlement from the moment it starts (G0: the cycle opened the
    PENDING invoice and its number); an organization without one for the period starts without an InvoiceId and gets
    it when the settlement creates the invoice."""
    with orgs.engine.begin() as conn:
        open_cycle(conn, "org-03", "2027-01", CREATED)
        open_cycle(conn, "org-07", "2027-01", CREATED)
        open_cycle(conn, "org-05", "2027-02", CREATED)  # next month's cycle: not this settlement's invoice
    with orgs.session() as s:
        numbers = {i.org_id: i.number for i in s.exec(select(Invoice).where(Invoice.period == "2027-01")).all()}
    assert set(numbers) == {"org-03", "org-07"} and all(numbers.values())
    client = RecordingClient()
    result = await page(StartingActivities(client, "billing", orgs, BillingDurations()))
    assert (result.started, result.last_org_id) == (12, "org-11")
    for i in range(12):
        org_id = f"org-{i:02d}"
        expected = {"OrgId": org_id, "BillingPeriod": "2027-01"}
        if org_id in numbers:
            expected["InvoiceId"] = numbers[org_id]
        assert client.attributes[settlement_workflow_id(org_id, "2027-01")] == expected, org_id
