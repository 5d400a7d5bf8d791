"""POST /v1/usage (SPEC I3, G0): batches of keyed lines, recorded once, totalled once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlmodel import func, select

from api.routes.usage import MAX_LINES
from billing.permissions import ApiRole
from store.tables import Invoice, UsageLine
from tests.api.conftest import OTHER, OWN, auth

pytestmark = pytest.mark.asyncio


def lines(keys, price: str = "0.10", day: str = "2027-02-03") -> list[dict]:
    return [{"key": f"meter-{k}", "project": "web", "deployment": "cluster0", "service": "Atlas Dedicated",
             "sku": "M10", "start_date": day, "end_date": day, "quantity": "1.5", "unit": "hours",
             "unit_price": price} for k in keys]


def stored(db, org: str = OWN) -> tuple[int, Decimal | None, str | None]:
    """(usage lines stored, the February PENDING invoice's running total and status)."""
    with db.session() as s:
        count = s.exec(select(func.count()).select_from(UsageLine).where(UsageLine.org_id == org)).one()
        invoice = s.exec(select(Invoice).where(Invoice.org_id == org, Invoice.period == "2027-02")).first()
    return count, invoice.total if invoice else None, invoice.status if invoice else None


async def test_a_batch_of_5000_is_recorded_and_a_resent_one_counted_once(api, keys, two_orgs):
    owner = auth(keys[ApiRole.ORGANIZATION_OWNER])
    first = await api.post("/v1/usage", json={"lines": lines(range(5000))}, headers=owner)
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 5000, "duplicates": 0}
    assert stored(two_orgs) == (5000, Decimal("750.00"), "PENDING")  # 5,000 x 1.5 h x 0.10 (G0 running total)

    again = await api.post("/v1/usage", json={"lines": lines(range(5000))}, headers=owner)
    assert again.json() == {"recorded": 0, "duplicates": 5000}
    assert stored(two_orgs) == (5000, Decimal("750.00"), "PENDING")

    overlapping = await api.post("/v1/usage", json={"lines": lines(range(4000, 6000))},
                                 headers=auth(keys[ApiRole.BILLING_ADMIN]))
    assert overlapping.json() == {"recorded": 1000, "duplicates": 1000}
    assert stored(two_orgs) == (6000, Decimal("900.00"), "PENDING")


async def test_a_key_is_per_organization(api, keys, two_orgs):
    body = {"lines": lines(range(3))}
    assert (await api.post("/v1/usage", json=body, headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))).json() == {
        "recorded": 3, "duplicates": 0}
    assert (await api.post("/v1/usage", json=body, headers=auth(keys.other_org_owner))).json() == {
        "recorded": 3, "duplicates": 0}
    assert stored(two_orgs, OTHER) == (3, Decimal("0.45"), "PENDING")


async def test_concurrent_overlapping_batches_count_each_line_once(api, keys, two_orgs):
    owner = auth(keys[ApiRole.ORGANIZATION_OWNER])
    batches = [lines(range(start, start + 1500)) for start in (0, 500, 1000, 0)]
    answers = await asyncio.gather(*(api.post("/v1/usage", json={"lines": b}, headers=owner) for b in batches))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["recorded"] for a in answers) == 2500
    assert sum(a.json()["duplicates"] for a in answers) == 4 * 1500 - 2500
    assert stored(two_orgs) == (2500, Decimal("375.00"), "PENDING")


async def test_a_line_repeated_within_a_batch_is_a_duplicate(api, keys, two_orgs):
    batch = lines([1, 2]) + lines([1], price="9.99")
    answer = await api.post("/v1/usage", json={"lines": batch}, headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert answer.json() == {"recorded": 2, "duplicates": 1}
    assert stored(two_orgs) == (2, Decimal("0.30"), "PENDING")


async def test_the_same_idempotency_key_answers_the_first_response(api, keys, two_orgs):
    headers = {**auth(keys[ApiRole.ORGANIZATION_OWNER]), "Idempotency-Key": "usage-batch-1"}
    first = await api.post("/v1/usage", json={"lines": lines(range(10))}, headers=headers)
    again = await api.post("/v1/usage", json={"lines": lines(range(10))}, headers=headers)
    assert first.json() == again.json() == {"recorded": 10, "duplicates": 0}
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("change, field", [
    ({"key": None}, "body.lines.1.key"),
    ({"quantity": 1.5}, "body.lines.1.quantity"),  # money and quantities are strings, never floats
    ({"unit_price": "-0.10"}, "body.lines.1.unit_price"),
    ({"start_date": "2027-02-30"}, "body.lines.1.start_date"),
    ({"colour": "blue"}, "body.lines.1.colour"),
])
async def test_an_invalid_line_names_its_field_and_nothing_is_recorded(api, keys, two_orgs, change, field):
    batch = lines(range(3))
    batch[1] = {k: v for k, v in {**batch[1], **change}.items() if v is not None}
    answer = await api.post("/v1/usage", json={"lines": batch}, headers=auth(keys[ApiRole.ORGANIZATION_OWNER]))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in answer.json()["errors"]}
    assert stored(two_orgs) == (0, None, None)


async def test_batch_size_is_bounded(api, keys, two_orgs):
    owner = auth(keys[ApiRole.ORGANIZATION_OWNER])
    empty = await api.post("/v1/usage", json={"lines": []}, headers=owner)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body.lines"
    too_many = await api.post("/v1/usage", json={"lines": lines(range(MAX_LINES + 1))}, headers=owner)
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "body.lines"
    assert stored(two_orgs) == (0, None, None)


@pytest.mark.parametrize("role", [ApiRole.ORGANIZATION_READ_ONLY, ApiRole.PROJECT_OWNER, ApiRole.PROJECT_READ_ONLY])
async def test_roles_that_may_not_change_billing_record_nothing(api, keys, two_orgs, role):
    answer = await api.post("/v1/usage", json={"lines": lines(range(2))}, headers=auth(keys[role]))
    assert answer.status_code == 403
    assert stored(two_orgs) == (0, None, None)


async def test_operator_records_for_the_named_organization_only(api, keys, two_orgs):
    operator = auth(keys[ApiRole.OPERATOR])
    answer = await api.post("/v1/usage", params={"org": OTHER}, json={"lines": lines(range(2))}, headers=operator)
    assert answer.json() == {"recorded": 2, "duplicates": 0}
    assert stored(two_orgs, OTHER)[0] == 2 and stored(two_orgs, OWN)[0] == 0
    other = await api.post("/v1/usage", params={"org": OWN}, json={"lines": lines(range(2))},
                           headers=auth(keys.other_org_owner))
    assert other.status_code == 404
