"""GET /v1/invoices (G1) and /v1/invoices/{number} (G2) through the API, with its keys, scoping and errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.permissions import ApiRole
from store.tables import Invoice, InvoiceLine, Payment
from tests.api.conftest import OTHER, OWN, auth

pytestmark = pytest.mark.asyncio

JAN = datetime(2027, 1, 31, 23, 0, tzinfo=timezone.utc)


def add_invoice(db, org: str, period: str, status: str, total: str, created: datetime, kind: str = "cloud",
                lines: list[tuple[str, str, str]] = ()) -> str:
    amount = Decimal(total)
    with db.session() as s:
        invoice = Invoice(key=f"{org}:{period}:{kind}", org_id=org, kind=kind, period=period, status=status,
                          currency="USD", usage=amount, billed_usage=amount, tax=Decimal(0), total=amount,
                          amount_due=Decimal(0) if status in ("PAID", "FREE") else amount, created_at=created)
        s.add(invoice)
        s.flush()
        invoice.number = f"INV-{period.replace('-', '')}-{invoice.id:06d}"
        for position, (project, service, line_amount) in enumerate(lines):
            s.add(InvoiceLine(invoice_id=invoice.id, position=position, project=project, deployment="cluster0",
                              service=service, sku="SKU", start_date=created.date(), end_date=created.date(),
                              quantity=Decimal(1), unit_price=Decimal(line_amount), amount=Decimal(line_amount)))
        if status in ("PAID", "FAILED"):
            s.add(Payment(idempotency_key=f"{invoice.number}:1", org_id=org, invoice_id=invoice.id, attempt=1,
                          method="card", status=status, amount=amount, currency="USD",
                          failure_code="card_declined" if status == "FAILED" else None,
                          created_at=created, updated_at=created))
        return invoice.number


@pytest.fixture
def invoices(two_orgs):
    db = two_orgs
    numbers = {
        "paid": add_invoice(db, OWN, "2027-01", "PAID", "59.52", JAN + timedelta(hours=2),
                            lines=[("web", "Compute", "50.00"), ("-", "Support", "9.52")]),
        "failed": add_invoice(db, OWN, "2027-01", "FAILED", "12.00", JAN + timedelta(hours=3), kind="consulting"),
        "free": add_invoice(db, OWN, "2027-02", "FREE", "0.00", JAN + timedelta(days=10)),
        "pending": add_invoice(db, OWN, "2027-03", "PENDING", "3.10", JAN + timedelta(days=13)),
        "other": add_invoice(db, OTHER, "2027-01", "PAID", "1.00", JAN + timedelta(hours=2)),
    }
    return numbers


async def test_list_is_the_keys_organization_newest_first(api, keys, invoices):
    response = await api.get("/v1/invoices", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert response.status_code == 200, response.text
    page = response.json()
    assert [i["number"] for i in page["invoices"]] == [invoices["pending"], invoices["free"], invoices["failed"],
                                                        invoices["paid"]]
    assert page["invoices"][-1]["total"] == "59.52"  # money as an exact decimal string
    assert page["from_date"] == "2027-02-01" and page["to_date"] == "2027-02-15"  # G1: creation date .. today


@pytest.mark.parametrize("status, expected", [("pending", ["pending", "failed"]), ("free", ["free"]),
                                              ("successful", ["paid"]), ("failed", ["failed"])])
async def test_status_filters(api, keys, invoices, status, expected):
    response = await api.get("/v1/invoices", params={"status": status, "from": "2027-01-01"},
                             headers=auth(keys[ApiRole.BILLING_ADMIN]))
    assert [i["number"] for i in response.json()["invoices"]] == [invoices[name] for name in expected]


async def test_date_filter_and_cursor_pages(api, keys, invoices):
    key = auth(keys[ApiRole.ORGANIZATION_READ_ONLY])
    first = (await api.get("/v1/invoices", params={"from": "2027-01-01", "to": "2027-02-01", "limit": 1},
                           headers=key)).json()
    assert [i["number"] for i in first["invoices"]] == [invoices["failed"]]
    second = (await api.get("/v1/invoices", params={"from": "2027-01-01", "to": "2027-02-01", "limit": 1,
                                                    "cursor": first["next_cursor"]}, headers=key)).json()
    assert [i["number"] for i in second["invoices"]] == [invoices["paid"]]
    assert second["next_cursor"] is None


async def test_one_invoice_has_every_g2_section(api, keys, invoices):
    response = await api.get(f"/v1/invoices/{invoices['paid']}", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    body = response.json()
    assert response.status_code == 200, body
    assert body["summary_by_project"] == {"web": "50.00"}  # the support plan's line is a subscription charge
    assert body["summary_by_service"] == {"Compute": "50.00", "Support": "9.52"}
    assert body["usage_by_deployment"] == {"cluster0": "59.52"}
    assert body["billing_address"]["city"] == "New York"
    assert [p["status"] for p in body["payments"]] == ["PAID"]
    assert body["actions"] == ["PDF", "VIEW DETAILS"]
    assert len(body["usage_details"]) == 2
    failed = (await api.get(f"/v1/invoices/{invoices['failed']}", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))).json()
    assert failed["actions"] == ["PDF", "VIEW DETAILS", "PAY NOW", "RETRY"]


async def test_another_organizations_invoice_is_404(api, keys, invoices):
    owner = auth(keys[ApiRole.ORGANIZATION_OWNER])
    assert (await api.get(f"/v1/invoices/{invoices['other']}", headers=owner)).status_code == 404
    response = await api.get("/v1/invoices", params={"org": OTHER}, headers=owner)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_operator_names_the_organization(api, keys, invoices):
    operator = auth(keys[ApiRole.OPERATOR])
    missing = await api.get("/v1/invoices", headers=operator)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "query.org"
    listed = (await api.get("/v1/invoices", params={"org": OTHER, "from": "2027-01-01"}, headers=operator)).json()
    assert [i["number"] for i in listed["invoices"]] == [invoices["other"]]
    assert (await api.get("/v1/invoices", params={"org": "nobody"}, headers=operator)).status_code == 404


@pytest.mark.parametrize("role", [ApiRole.PROJECT_OWNER, ApiRole.PROJECT_READ_ONLY])
async def test_project_roles_do_not_read_billing(api, keys, invoices, role):
    response = await api.get("/v1/invoices", headers=auth(keys[role]))
    assert response.status_code == 403
    assert "may not read billing" in response.json()["detail"]


async def test_no_key_or_a_wrong_one_is_401(api, keys, invoices):
    assert (await api.get("/v1/invoices")).status_code == 401
    assert (await api.get("/v1/invoices", headers=auth("bk_not-a-key"))).status_code == 401


async def test_invalid_query_names_the_field(api, keys, invoices):
    response = await api.get("/v1/invoices", params={"status": "maybe", "from": "yesterday"},
                             headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in problem["errors"]} == {"query.status", "query.from"}
    bad_cursor = await api.get("/v1/invoices", params={"cursor": "zzz"}, headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "query.cursor"
