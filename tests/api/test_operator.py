"""Operator endpoints (operator keys only): start a month-end (answers at once) and settle one organization."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import select
from temporalio.service import RPCError

from billing.permissions import ApiRole
from contracts.flows import month_end_workflow_id, settlement_workflow_id
from store.gateway import SandboxGateway
from store.tables import Invoice, UsageLine
from tests.api.conftest import OTHER, OWN, auth, make_keys
from tests.api.workflow_api import workflow_api
from tests.factories import VISA, card, org_with_method
from workflows.month_end import MonthEndWorkflow

pytestmark = pytest.mark.asyncio

# The time-skipping tests' business clock starts on 1 December 2026 (tests/conftest.py): November has ended.
ENDED, UNDER_WAY = "2026-11", "2026-12"
CREATED = datetime(2026, 10, 1, tzinfo=timezone.utc)


@pytest.fixture
def orgs(db):
    gateway = SandboxGateway(db)
    for org in (OWN, OTHER):
        org_with_method(db, gateway, card(VISA), org_id=org, created=CREATED)
    with db.session() as s:  # November's usage of acme, covered by nothing: settled and charged to its card
        s.add(UsageLine(org_id=OWN, period=ENDED, project="web", service="Atlas", sku="M10",
                        start_date=date(2026, 11, 2), end_date=date(2026, 11, 2), quantity=Decimal("10"),
                        unit_price=Decimal("1.25"), key="nov-1"))
    return gateway, make_keys(db)


async def test_month_end_answers_at_once_with_the_workflow(time_skipping_env, db, smtp, task_queue, orgs):
    gateway, keys = orgs
    async with workflow_api(time_skipping_env, db, smtp, task_queue, gateway) as world:
        response = await world.http.post("/v1/operator/month-end", json={"period": ENDED},
                                         headers=auth(keys[ApiRole.OPERATOR]))
        assert response.status_code == 202, response.text
        assert response.json() == {"period": ENDED, "workflow_id": month_end_workflow_id(ENDED)}
        handle = world.billing.temporal.get_workflow_handle_for(MonthEndWorkflow.run, month_end_workflow_id(ENDED))
        result = await handle.result()
        assert result.started == 2  # acme and globex
        for org in (OWN, OTHER):
            await world.billing.settlement_result(org, ENDED)
    with db.session() as s:
        totals = {i.org_id: i.total for i in s.exec(select(Invoice).where(Invoice.period == ENDED,
                                                                          Invoice.kind == "cloud"))}
    assert totals == {OWN: Decimal("12.50"), OTHER: Decimal("0.00")}


async def test_settle_one_organization_and_again_answers_the_same(time_skipping_env, db, smtp, task_queue, orgs):
    gateway, keys = orgs
    operator = auth(keys[ApiRole.OPERATOR])
    async with workflow_api(time_skipping_env, db, smtp, task_queue, gateway) as world:
        first = await world.http.post("/v1/operator/settlements", json={"org": OWN, "period": ENDED},
                                      headers=operator)
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["invoice"]["total"], body["payment_workflow_id"]) == ("12.50", f"payment-{body['invoice']['number']}")
        again = await world.http.post("/v1/operator/settlements", json={"org": OWN, "period": ENDED},
                                      headers=operator)
        assert again.json()["invoice"]["number"] == body["invoice"]["number"]  # H1: one settlement per period
        read = await world.http.get(f"/v1/invoices/{body['invoice']['number']}", params={"org": OWN},
                                    headers=operator)
        assert read.status_code == 200 and read.json()["total"] == "12.50"
        described = await world.billing.temporal.get_workflow_handle(settlement_workflow_id(OWN, ENDED)).describe()
        assert described.id == settlement_workflow_id(OWN, ENDED)


@pytest.mark.parametrize("path, body, field", [
    ("/v1/operator/month-end", {"period": UNDER_WAY}, "body.period"),  # the cycle under way is not settled (G0)
    ("/v1/operator/month-end", {"period": "2026-13"}, "body.period"),
    ("/v1/operator/settlements", {"org": OWN, "period": "2027-01"}, "body.period"),
    ("/v1/operator/settlements", {"period": ENDED}, "body.org"),
])
async def test_invalid_requests_name_the_field_and_start_nothing(time_skipping_env, db, smtp, task_queue, orgs,
                                                                 path, body, field):
    gateway, keys = orgs
    async with workflow_api(time_skipping_env, db, smtp, task_queue, gateway) as world:
        response = await world.http.post(path, json=body, headers=auth(keys[ApiRole.OPERATOR]))
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["errors"]}
        period = body.get("period", ENDED)
        for workflow_id in (month_end_workflow_id(period), settlement_workflow_id(OWN, period)):
            with pytest.raises(RPCError, match="not found"):
                await world.billing.temporal.get_workflow_handle(workflow_id).describe()


async def test_only_operators_and_only_existing_organizations(time_skipping_env, db, smtp, task_queue, orgs):
    gateway, keys = orgs
    async with workflow_api(time_skipping_env, db, smtp, task_queue, gateway) as world:
        for role in ApiRole:
            if role is ApiRole.OPERATOR:
                continue
            for path, body in (("/v1/operator/month-end", {"period": ENDED}),
                               ("/v1/operator/settlements", {"org": OWN, "period": ENDED})):
                response = await world.http.post(path, json=body, headers=auth(keys[role]))
                assert response.status_code == 403, (role, path, response.text)
        assert (await world.http.post("/v1/operator/month-end", json={"period": ENDED})).status_code == 401
        unknown = await world.http.post("/v1/operator/settlements", json={"org": "nobody", "period": ENDED},
                                        headers=auth(keys[ApiRole.OPERATOR]))
        assert unknown.status_code == 404
    with db.session() as s:
        assert s.exec(select(Invoice).where(Invoice.period == ENDED)).all() == []
