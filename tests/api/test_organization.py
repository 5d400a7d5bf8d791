"""The organization through the API (SPEC I2, A1-A3, D7): details, members, billing profile and billing contact."""

from __future__ import annotations

import pytest
from sqlmodel import select

from api.app import create_app
from api.routes import consulting, credits, organization, payment_methods, subscriptions, support
from billing.permissions import ApiRole
from store.tables import BillingContactChange, BillingProfile, BillingProfileChange, OrgMember
from tests.api.access_table import ROUTE_ACCESS
from tests.api.conftest import OTHER, OWN, auth

pytestmark = pytest.mark.asyncio

OWNER, ADMIN, READER = ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN, ApiRole.ORGANIZATION_READ_ONLY
DE_PROFILE = {"country": "DE", "state": "Berlin", "city": "Berlin", "address_line1": "Unter den Linden 1",
              "postal_code": "10117", "company_name": "Acme GmbH", "tax_id": "DE136695976"}


async def test_every_route_of_these_resources_is_in_the_access_table():
    modules = (consulting, credits, organization, payment_methods, subscriptions, support)
    routes = {(method, "/v1" + route.path) for module in modules for route in module.router.routes
              for method in route.methods}
    assert routes == set(ROUTE_ACCESS)
    app = create_app(None)  # type: ignore[arg-type]
    served = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert routes <= served


async def test_organization_details(api, keys):
    response = await api.get("/v1/organization", headers=auth(keys[READER]))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": OWN, "name": "Acme", "status": "ACTIVE", "created_at": "2027-02-01T00:00:00Z"}
    operator = await api.get("/v1/organization", params={"org": OTHER}, headers=auth(keys[ApiRole.OPERATOR]))
    assert operator.json()["id"] == OTHER


@pytest.mark.parametrize("path", ["/v1/organization", "/v1/organization/members", "/v1/organization/billing-profile",
                                  "/v1/organization/billing-profile/changes", "/v1/organization/billing-contact",
                                  "/v1/organization/billing-contact/changes"])
async def test_reads_need_a_key_a_billing_role_and_the_own_organization(api, keys, path):
    assert (await api.get(path)).status_code == 401
    assert (await api.get(path, headers=auth(keys[ApiRole.PROJECT_OWNER]))).status_code == 403
    other = await api.get(path, params={"org": OWN}, headers=auth(keys.other_org_owner))
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"


async def test_members_are_listed_added_and_removed_keeping_one_owner(api, keys, two_orgs):
    owner = auth(keys[OWNER])
    listed = (await api.get("/v1/organization/members", headers=auth(keys[READER]))).json()
    assert [(m["email"], m["role"]) for m in listed] == [("owner@acme.test", "Organization Owner"),
                                                         ("billing@acme.test", "Billing Admin")]
    added = await api.post("/v1/organization/members", json={"email": "Ops@Acme.test", "role": "Billing Admin"},
                           headers=owner)
    assert added.status_code == 201, added.text
    assert added.json()["email"] == "ops@acme.test"
    again = await api.post("/v1/organization/members", json={"email": "ops@acme.test", "role": "Billing Admin"},
                           headers=owner)
    assert again.status_code == 409
    assert (await api.delete(f"/v1/organization/members/{added.json()['id']}", headers=owner)).status_code == 204
    last_owner = listed[0]["id"]
    refused = await api.delete(f"/v1/organization/members/{last_owner}", headers=owner)
    assert refused.status_code == 409 and "last Organization Owner" in refused.json()["detail"]
    with two_orgs.session() as s:
        assert sorted(m.email for m in s.exec(select(OrgMember).where(OrgMember.org_id == OWN))) == [
            "billing@acme.test", "owner@acme.test"]


async def test_members_need_manage_members_and_stay_in_their_organization(api, keys, two_orgs):
    with two_orgs.session() as s:
        globex_owner = s.exec(select(OrgMember).where(OrgMember.org_id == OTHER)).first().id
    new = {"email": "x@acme.test", "role": "Organization Owner"}
    assert (await api.post("/v1/organization/members", json=new, headers=auth(keys[ADMIN]))).status_code == 403
    assert (await api.delete(f"/v1/organization/members/{globex_owner}", headers=auth(keys[OWNER]))).status_code == 404
    assert (await api.post("/v1/organization/members", json=new)).status_code == 401
    other = await api.post("/v1/organization/members", params={"org": OWN}, json=new,
                           headers=auth(keys.other_org_owner))
    assert other.status_code == 404
    invalid = await api.post("/v1/organization/members", json={"email": "nobody", "role": "Emperor"},
                             headers=auth(keys[OWNER]))
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"body.email", "body.role"}


async def test_billing_profile_saved_validated_and_audited_with_the_keys_name(api, keys, two_orgs):
    saved = await api.put("/v1/organization/billing-profile", json=DE_PROFILE, headers=auth(keys[ADMIN]))
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["profile"]["country"] == "DE" and body["profile"]["tax_id"] == "DE136695976"
    assert set(body["changed"]) >= {"country", "state", "tax_id", "address_line1"}
    again = await api.put("/v1/organization/billing-profile", json=DE_PROFILE, headers=auth(keys[ADMIN]))
    assert again.status_code == 200 and again.json()["changed"] == []  # a PUT may be repeated
    changes = (await api.get("/v1/organization/billing-profile/changes", headers=auth(keys[READER]))).json()
    assert len(changes) == 1
    assert changes[0]["changed_by"] == "billing-admin test key"
    assert changes[0]["changes"]["country"] == ["US", "DE"]
    got = (await api.get("/v1/organization/billing-profile", headers=auth(keys[OWNER]))).json()
    assert got["city"] == "Berlin"


async def test_an_invalid_billing_profile_names_the_field_and_changes_nothing(api, keys, two_orgs):
    us_with_tax_id = {**DE_PROFILE, "country": "US", "state": "NY", "tax_id": "DE136695976"}
    response = await api.put("/v1/organization/billing-profile", json=us_with_tax_id, headers=auth(keys[OWNER]))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.tax_id"]
    bad_state = await api.put("/v1/organization/billing-profile", json={**DE_PROFILE, "country": "US", "state": "ZZ",
                                                                         "tax_id": None}, headers=auth(keys[OWNER]))
    assert [e["field"] for e in bad_state.json()["errors"]] == ["body.state"]
    forbidden = await api.put("/v1/organization/billing-profile", json=DE_PROFILE, headers=auth(keys[READER]))
    assert forbidden.status_code == 403
    assert (await api.put("/v1/organization/billing-profile", json=DE_PROFILE)).status_code == 401
    other = await api.put("/v1/organization/billing-profile", params={"org": OWN}, json=DE_PROFILE,
                          headers=auth(keys.other_org_owner))
    assert other.status_code == 404
    with two_orgs.session() as s:
        assert s.get(BillingProfile, OWN).country == "US"
        assert s.exec(select(BillingProfileChange)).all() == []


async def test_billing_contact_routes_alerts_and_keeps_its_audit_trail(api, keys, two_orgs):
    before = (await api.get("/v1/organization/billing-contact", headers=auth(keys[READER]))).json()
    assert before == {"billing_email": None, "only_invoice_emails": False,
                      "recipients": ["owner@acme.test", "billing@acme.test"]}  # A3: no billing e-mail
    saved = await api.put("/v1/organization/billing-contact", json={"billing_email": "ap@acme.test",
                                                                    "only_invoice_emails": True},
                          headers=auth(keys[OWNER]))
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"contact": {"billing_email": "ap@acme.test", "only_invoice_emails": True,
                                        "recipients": ["ap@acme.test"]}, "changed": True}
    same = await api.put("/v1/organization/billing-contact", json={"billing_email": "ap@acme.test",
                                                                   "only_invoice_emails": True},
                         headers=auth(keys[OWNER]))
    assert same.json()["changed"] is False
    [change] = (await api.get("/v1/organization/billing-contact/changes", headers=auth(keys[ADMIN]))).json()
    assert (change["changed_by"], change["old_billing_email"], change["new_billing_email"]) == (
        "organization-owner test key", None, "ap@acme.test")
    invalid = await api.put("/v1/organization/billing-contact", json={"billing_email": "not-an-address"},
                            headers=auth(keys[OWNER]))
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.billing_email"
    assert (await api.put("/v1/organization/billing-contact", json={}, headers=auth(keys[READER]))).status_code == 403
    with two_orgs.session() as s:
        assert len(s.exec(select(BillingContactChange)).all()) == 1


async def test_a_member_id_out_of_range_is_422_not_a_crash(api, keys):
    """I4: an id no column can hold names nobody: refused at the edge with its field, never a 500."""
    response = await api.delete(f"/v1/organization/members/{2**63}", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.member_id"
