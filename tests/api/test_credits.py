"""Available Credits through the API (SPEC D3, D1): active, upcoming, History, the two Elastic Billing flags and a
monthly commitment's month (the worked example of D1: $1,000 a month, $400 banked in January)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from billing.permissions import ApiRole
from store.tables import CreditLine, Invoice, Subscription
from tests.api.conftest import OTHER, OWN, auth

pytestmark = pytest.mark.asyncio

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)


def add_lines(db, org: str, *lines: tuple[str, str, str, date, date]) -> None:
    with db.session() as s:
        for position, (kind, amount, used, start, end) in enumerate(lines):
            s.add(CreditLine(org_id=org, position=position, kind=kind, amount=Decimal(amount), used=Decimal(used),
                             start_date=start, end_date=end))


def add_subscription(db, org: str, type_: str, **state) -> None:
    with db.session() as s:
        s.add(Subscription(org_id=org, type=type_, term_start=date(2027, 1, 1), term_months=12,
                           commitment=Decimal("12000") if type_ == "monthly_commitment" else Decimal(0),
                           created_at=AT, **state))


def cycle(db, org: str, period: str, usage: str) -> None:
    amount = Decimal(usage)
    with db.session() as s:
        s.add(Invoice(key=f"{org}:{period}:cloud", number=f"INV-{period}-{org}", org_id=org, kind="cloud",
                      period=period, status="PENDING", currency="USD", usage=amount, billed_usage=amount,
                      tax=Decimal(0), total=amount, amount_due=amount, created_at=AT))


async def test_the_table_splits_active_upcoming_and_history_with_the_commitment_month(api, keys, two_orgs):
    add_subscription(two_orgs, OWN, "monthly_commitment", bank=Decimal("400"), banked_total=Decimal("400"),
                     cumulative_usage=Decimal("600"), cumulative_billed=Decimal("1000"), months_billed=1,
                     last_period="2027-01")
    add_lines(two_orgs, OWN, ("promotional", "500", "100", date(2027, 1, 1), date(2027, 6, 30)),
              ("promotional", "200", "0", date(2027, 3, 1), date(2027, 3, 31)),
              ("startup", "50", "50", date(2026, 12, 1), date(2027, 1, 31)))
    cycle(two_orgs, OWN, "2027-02", "1300")
    response = await api.get("/v1/credits", headers=auth(keys[ApiRole.ORGANIZATION_READ_ONLY]))
    assert response.status_code == 200, response.text
    table = response.json()
    assert table["as_of"] == "2027-02-15"
    assert [(r["kind"], r["amount"], r["used"], r["remaining"]) for r in table["active"]] == [
        ("monthly_commitment", "12000.00", "1000.00", "11000.00"),  # D1: the minimums billed so far
        ("commitment_bank", "400.00", "0.00", "400.00"),
        ("promotional", "500.00", "100.00", "400.00")]
    assert table["active"][2]["progress"] == "0.2000"
    assert [(r["kind"], r["start"]) for r in table["upcoming"]] == [("promotional", "2027-03-01")]
    assert [(r["kind"], r["status"]) for r in table["history"]] == [("startup", "expired")]
    assert (table["elastic_billing_enabled"], table["elastic_billing_active"]) == (False, False)
    month = table["commitment"]
    assert (month["period"], month["month"], month["monthly_commitment"], month["usage_to_date"],
            month["commitment_left"], month["banked"]) == ("2027-02", 2, "1000.00", "1300.00", "0.00", "400.00")
    # D1's February: the $300 overage is covered from the bank, so the month would bill its $1,000 commitment.
    assert month["billed_if_closed_today"] == "1000.00" and "covered from the bank" in month["explanation"]


async def test_without_credits_elastic_billing_is_enabled_and_active(api, keys, two_orgs):
    table = (await api.get("/v1/credits", headers=auth(keys[ApiRole.BILLING_ADMIN]))).json()
    assert (table["elastic_billing_enabled"], table["elastic_billing_active"]) == (True, True)
    assert table["active"] == table["upcoming"] == table["history"] == [] and table["commitment"] is None


async def test_an_elastic_subscription_is_infinite_credit_and_active_once_credits_run_out(api, keys, two_orgs):
    add_subscription(two_orgs, OWN, "elastic")
    add_lines(two_orgs, OWN, ("promotional", "100", "100", date(2027, 1, 1), date(2027, 12, 31)))
    cycle(two_orgs, OWN, "2027-01", "250")
    cycle(two_orgs, OWN, "2027-02", "75.5")
    table = (await api.get("/v1/credits", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))).json()
    assert (table["elastic_billing_enabled"], table["elastic_billing_active"]) == (True, True)
    assert [(r["kind"], r["amount"], r["used"], r["remaining"]) for r in table["active"]] == [
        ("promotional", "100.00", "100.00", "0.00"), ("elastic", None, "325.50", None)]


async def test_credits_refuse_what_they_must(api, keys, two_orgs):
    add_lines(two_orgs, OTHER, ("promotional", "100", "0", date(2027, 1, 1), date(2027, 12, 31)))
    assert (await api.get("/v1/credits")).status_code == 401
    assert (await api.get("/v1/credits", headers=auth(keys[ApiRole.PROJECT_OWNER]))).status_code == 403
    assert (await api.get("/v1/credits", params={"org": OTHER}, headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
            ).status_code == 404
    own = (await api.get("/v1/credits", headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))).json()
    assert own["active"] == []  # globex's line is not acme's
    operator = (await api.get("/v1/credits", params={"org": OTHER}, headers=auth(keys[ApiRole.OPERATOR]))).json()
    assert [r["amount"] for r in operator["active"]] == ["100.00"]
