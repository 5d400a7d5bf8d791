"""The fast pricing path (tuples, one context, one statement for the lines) gives exactly the invoice of the
straightforward one (a model per line, round_money per line, an ORM row per line), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.invoices import InvoiceActivities, SettleInvoiceRequest
from billing.invoicing import CloudInvoiceDraft, InvoiceLineDraft, UsageItem, build_cloud_invoice, price_usage
from billing.money import round_money
from store.tables import BillingProfile, Invoice, InvoiceLine, Organization, UsageLine

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)
FIELDS = ["project", "deployment", "service", "sku", "start_date", "end_date", "quantity", "unit", "unit_price"]

# Values a NUMERIC(20, 6) column holds, small enough that the straightforward path's product (computed in the
# default 28-digit context) is exact too; negative quantities reach round_money's "never -0.00" rule.
quantities = st.decimals(min_value=-1000, max_value=100_000_000, places=6, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False)


def usage_items(quantities: st.SearchStrategy[Decimal] = quantities) -> st.SearchStrategy[UsageItem]:
    return st.builds(UsageItem, project=st.sampled_from(["web", "api", "etl", "o'brien \"db\""]),
                     deployment=st.sampled_from([None, "Cluster0", "Cluster1"]),
                     service=st.sampled_from(["Atlas Dedicated", "Data Transfer", "Backup"]),
                     sku=st.sampled_from(["M10", "M30", "XFER"]), start_date=st.just(date(2027, 1, 1)),
                     end_date=st.just(date(2027, 2, 1)), quantity=quantities,
                     unit=st.sampled_from(["", "hours", "GB"]), unit_price=prices)


items = usage_items()
recorded_items = usage_items(quantities.filter(lambda q: q >= 0))  # what record_usage accepts (no negatives)


def straightforward_invoice(items: list[UsageItem]) -> CloudInvoiceDraft:
    """The cloud invoice as it was built before the fast path: a model and a round_money call per line."""
    lines = [InvoiceLineDraft(**item.model_dump(), amount=round_money(item.quantity * item.unit_price, "USD"))
             for item in items]
    by_project: dict[str, Decimal] = defaultdict(Decimal)
    by_service: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        by_project[line.project] += line.amount
        by_service[line.service] += line.amount
    usage = sum((line.amount for line in lines), Decimal("0"))
    return CloudInvoiceDraft(lines=lines, usage=usage, by_project=dict(by_project), by_service=dict(by_service))


def exactly(draft: CloudInvoiceDraft) -> tuple:
    """Every value with its representation ("0.00" is not "-0.00", "5.10" is not "5.1") and every order."""
    return ([(line.model_dump(), str(line.amount), line.model_fields_set) for line in draft.lines], str(draft.usage),
            [(k, str(v)) for k, v in draft.by_project.items()], [(k, str(v)) for k, v in draft.by_service.items()])


@given(st.lists(items, max_size=60))
def test_build_cloud_invoice_is_exactly_the_straightforward_invoice(usage):
    assert exactly(build_cloud_invoice(usage)) == exactly(straightforward_invoice(usage))


@given(st.lists(items, max_size=60))
def test_price_usage_on_tuples_gives_the_same_amounts_and_sums(usage):
    expected = straightforward_invoice(usage)
    priced = price_usage((i.project, i.service, i.quantity, i.unit_price) for i in usage)
    assert [str(a) for a in priced.amounts] == [str(line.amount) for line in expected.lines]
    assert str(priced.usage) == str(expected.usage)
    assert list(priced.by_project.items()) == list(expected.by_project.items())
    assert list(priced.by_service.items()) == list(expected.by_service.items())


def test_a_product_beyond_28_digits_is_rounded_once_from_its_exact_value():
    # 40 significant digits: the default context would round the product before round_money rounds it again.
    quantity, unit_price = Decimal("12345678901234.123456"), Decimal("98765432109876.123455")
    with localcontext(prec=100):
        exact = (quantity * unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert price_usage([("p", "s", quantity, unit_price)]).amounts == [exact]


def test_a_negative_amount_that_rounds_to_zero_is_zero_not_minus_zero():
    [amount] = price_usage([("p", "s", Decimal("-1"), Decimal("0.004"))]).amounts
    assert str(amount) == "0.00"


def test_no_usage_is_a_zero_invoice():
    priced = price_usage([])
    assert (priced.amounts, str(priced.usage), priced.by_project, priced.by_service) == ([], "0", {}, {})


_orgs = itertools.count()


def _org_with_usage(db, usage: list[UsageItem]) -> str:
    org_id = f"org-{next(_orgs)}"
    with db.session() as s:
        s.add(Organization(id=org_id, name=org_id, created_at=AT))
        s.flush()
        s.add(BillingProfile(org_id=org_id, country="JP", state="Tokyo", city="Tokyo", address_line1="1-1",
                             postal_code="100-0001", updated_at=AT))
        # Usage of another period, recorded first, must stay out of this period's invoice.
        s.add(UsageLine(org_id=org_id, period="2026-12", project="web", service="Backup", sku="k",
                        start_date=date(2026, 12, 1), end_date=date(2027, 1, 1), quantity=Decimal(1),
                        unit_price=Decimal(1)))
        for item in usage:
            s.add(UsageLine(org_id=org_id, period="2027-01", **item.model_dump()))
            s.flush()
    return org_id


def _stored(db, invoice_id: int) -> tuple[Invoice, list[InvoiceLine]]:
    with db.session() as s:
        invoice = s.get(Invoice, invoice_id)
        lines = s.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                       .order_by(InvoiceLine.position)).all()
    return invoice, lines


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=st.lists(recorded_items, max_size=40))
def test_invoicing_stores_exactly_the_lines_of_the_straightforward_invoice(db, usage):
    """The settlement (the driver's cursor and one fixed statement on PostgreSQL) stores the lines the
    straightforward path computes."""
    org_id = _org_with_usage(db, usage)
    expected = straightforward_invoice(usage)
    request = SettleInvoiceRequest(org_id=org_id, period="2027-01", at=AT)

    summary = ActivityEnvironment().run(InvoiceActivities(db).settle_cloud_invoice, request)

    invoice, lines = _stored(db, summary.invoice_id)
    assert (invoice.usage, invoice.billed_usage) == (expected.usage,) * 2
    assert invoice.total == expected.usage + invoice.tax == summary.total
    assert [line.position for line in lines] == list(range(len(usage)))  # stored in position order
    assert [{name: getattr(line, name) for name in [*FIELDS, "amount"]} for line in lines] == \
        [line.model_dump() for line in expected.lines]
