"""Support plans (SPEC B1) and support cases (B2) through the API."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlmodel import select

from billing.permissions import ApiRole
from store.tables import SupportCase, SupportPlanPeriod
from tests.api.conftest import OTHER, OWN, PROJECT, auth
from tests.api.live import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.asyncio

OWNER, ADMIN, READER = ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN, ApiRole.ORGANIZATION_READ_ONLY
P_OWNER, P_READER = ApiRole.PROJECT_OWNER, ApiRole.PROJECT_READ_ONLY


def case(project: str = PROJECT, **extra) -> dict:
    return {"project": project, "subject": "Cluster unreachable", "description": "Since 10:00 UTC", **extra}


async def test_b2_project_roles_raise_for_their_project_and_read_only_only_views(api, keys):
    raised = await api.post("/v1/support-cases", json=case(severity="high"), headers=auth(keys[P_OWNER]))
    assert raised.status_code == 201, raised.text
    assert (raised.json()["raised_by"], raised.json()["severity"]) == ("project-owner test key", "high")
    other_project = await api.post("/v1/support-cases", json=case("web"), headers=auth(keys[P_OWNER]))
    assert other_project.status_code == 403 and "SPEC B2" in other_project.json()["detail"]
    assert (await api.post("/v1/support-cases", json=case(), headers=auth(keys[P_READER]))).status_code == 403
    for role in (P_READER, P_OWNER):
        own = await api.get("/v1/support-cases", headers=auth(keys[role]))  # the key's own project
        named = await api.get("/v1/support-cases", params={"project": PROJECT}, headers=auth(keys[role]))
        assert [c["subject"] for c in own.json()] == [c["subject"] for c in named.json()] == ["Cluster unreachable"]
        assert (await api.get("/v1/support-cases", params={"project": "web"},
                              headers=auth(keys[role]))).status_code == 403


async def test_b2_an_organization_owner_raises_and_views_for_every_project(api, keys, two_orgs):
    assert (await api.post("/v1/support-cases", json=case("web"), headers=auth(keys[OWNER]))).status_code == 201
    assert (await api.post("/v1/support-cases", json=case(), headers=auth(keys[P_OWNER]))).status_code == 201
    every = (await api.get("/v1/support-cases", headers=auth(keys[OWNER]))).json()
    assert sorted(c["project"] for c in every) == [PROJECT, "web"]
    operator = (await api.get("/v1/support-cases", params={"org": OWN}, headers=auth(keys[ApiRole.OPERATOR]))).json()
    assert len(operator) == 2
    for role in (ADMIN, READER):  # organization roles other than Owner have no project role (B2)
        assert (await api.get("/v1/support-cases", headers=auth(keys[role]))).status_code == 403
        assert (await api.get("/v1/support-cases", params={"project": PROJECT},
                              headers=auth(keys[role]))).status_code == 403
        assert (await api.post("/v1/support-cases", json=case(), headers=auth(keys[role]))).status_code == 403
    with two_orgs.session() as s:
        assert len(s.exec(select(SupportCase)).all()) == 2


async def test_support_cases_refuse_what_they_must(api, keys, two_orgs):
    assert (await api.get("/v1/support-cases")).status_code == 401
    assert (await api.post("/v1/support-cases", json=case())).status_code == 401
    assert (await api.get("/v1/support-cases", params={"org": OWN},
                          headers=auth(keys.other_org_owner))).status_code == 404
    assert (await api.post("/v1/support-cases", params={"org": OWN}, json=case(),
                           headers=auth(keys.other_org_owner))).status_code == 404
    invalid = await api.post("/v1/support-cases", json={"project": PROJECT, "subject": " ", "description": "x",
                                                        "severity": "apocalyptic"}, headers=auth(keys[OWNER]))
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"body.subject", "body.severity"}
    own = await api.post("/v1/support-cases", params={"org": OTHER}, json=case(), headers=auth(keys.other_org_owner))
    assert own.status_code == 201  # globex's owner raises for globex, which acme's keys never see
    assert (await api.get("/v1/support-cases", headers=auth(keys[OWNER]))).json() == []
    with two_orgs.session() as s:
        assert [c.org_id for c in s.exec(select(SupportCase))] == [OTHER]


async def test_support_plan_routes_refuse_what_they_must(api, keys):
    plan = (await api.get("/v1/support-plan", headers=auth(keys[READER]))).json()
    assert plan == {"plan": "basic", "since": None, "trial_ends": None, "billing_stopped": None, "price": None,
                    "pending": None}
    assert (await api.get("/v1/support-plan")).status_code == 401
    assert (await api.get("/v1/support-plan", headers=auth(keys[P_OWNER]))).status_code == 403
    assert (await api.get("/v1/support-plan", params={"org": OWN},
                          headers=auth(keys.other_org_owner))).status_code == 404
    assert (await api.post("/v1/support-plan", json={"plan": "developer"},
                           headers=auth(keys[READER]))).status_code == 403
    assert (await api.post("/v1/support-plan", json={"plan": "developer"}, params={"org": OWN},
                           headers=auth(keys.other_org_owner))).status_code == 404
    invalid = await api.post("/v1/support-plan", json={"plan": "gold"}, headers=auth(keys[OWNER]))
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.plan"


async def test_a_plan_change_takes_effect_on_the_first_of_next_month(live, keys):
    admin = auth(keys[ADMIN])
    assert (await live.env.get_current_time()).date().isoformat() == "2026-12-01"
    changed = await live.api.post("/v1/support-plan", json={"plan": "developer"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"plan": "developer", "effective": "2027-01-01", "billing_stopped": None}
    waiting = (await live.api.get("/v1/support-plan", headers=admin)).json()
    assert waiting["plan"] == "basic" and waiting["pending"] == {"plan": "developer", "effective": "2027-01-01"}
    again = await live.api.post("/v1/support-plan", json={"plan": "developer"}, headers=admin)
    assert again.status_code == 409 and again.json()["type"] == "/problems/nothing-to-do"
    await live.env.sleep(datetime(2027, 1, 2, tzinfo=timezone.utc) - await live.env.get_current_time())
    now = (await live.api.get("/v1/support-plan", headers=admin)).json()
    assert (now["plan"], now["since"], now["pending"]) == ("developer", "2027-01-01", None)
    assert now["price"] == {"rate": "0.20", "minimum": "49.00"}
    history = await live.env.client.get_workflow_handle(f"support-plan-{OWN}").fetch_history()
    assert any(event.HasField("timer_fired_event_attributes") for event in history.events)  # B1: its timer to the 1st
    with live.db.session() as s:
        assert [p.plan for p in s.exec(select(SupportPlanPeriod).order_by(SupportPlanPeriod.start_date))] == [
            "basic", "developer"]

