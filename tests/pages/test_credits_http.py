"""The Available Credits page over HTTP on SQLite and PostgreSQL (no Temporal): active lines with used/total as a
progress bar, upcoming lines, History, the Elastic Billing enabled/active state, and a monthly commitment's month
against its commitment with what is banked (SPEC D3, D1, G5), read from services.credits."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlmodel import select

from store.db import Database
from store.tables import CreditLine, Invoice, Subscription
from tests.pages.conftest import add_invoice, line_rows, sign_in

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)


def add_lines(db: Database, org: str, *lines: tuple[str, str, str, date, date]) -> None:
    with db.session() as s:
        for position, (kind, amount, used, start, end) in enumerate(lines):
            s.add(CreditLine(org_id=org, position=position, kind=kind, amount=Decimal(amount), used=Decimal(used),
                             start_date=start, end_date=end))


def add_subscription(db: Database, org: str, type_: str, **state) -> None:
    with db.session() as s:
        s.add(Subscription(org_id=org, type=type_, term_start=date(2027, 1, 1), term_months=12,
                           commitment=Decimal("12000") if type_ == "monthly_commitment" else Decimal(0),
                           created_at=AT, **state))


def set_cycle_usage(db: Database, invoice: Invoice, usage: str) -> None:
    with db.session() as s:
        row = s.get(Invoice, invoice.id)
        row.usage = row.billed_usage = row.total = row.amount_due = Decimal(usage)
        s.add(row)


def section(html: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its closing tag (tables and sections do not nest here)."""
    start = html.index(f'id="{element_id}"')
    tag = html[html.rindex("<", 0, start) + 1:start].split()[0]
    return html[start:html.index(f"</{tag}>", start)]


def rows(html: str) -> list[str]:
    """Each row's text, tags dropped and spaces folded."""
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)]


async def test_the_credits_page_shows_active_upcoming_history_and_the_commitment_month(browser_client, seeded):
    db = seeded.db
    # D1's worked example: $12,000 over 12 months; January used $600 of its $1,000 and banked $400.
    add_subscription(db, "acme", "monthly_commitment", bank=Decimal("400"), banked_total=Decimal("400"),
                     cumulative_usage=Decimal("600"), cumulative_billed=Decimal("1000"), months_billed=1,
                     last_period="2027-01")
    add_lines(db, "acme", ("promotional", "500", "100", date(2027, 1, 1), date(2027, 6, 30)),
              ("prepaid", "2000", "0", date(2027, 3, 1), date(2028, 2, 29)),
              ("startup", "50", "50", date(2026, 12, 1), date(2027, 1, 31)))
    set_cycle_usage(db, seeded.pending, "1300")  # February so far: $300 over the commitment
    await sign_in(browser_client, db)

    response = await browser_client.get("/orgs/acme/credits")
    assert response.status_code == 200
    page = response.text
    assert "<h1>Available Credits" in page and "as of 2027-02-15" in page
    assert 'href="/orgs/acme/credits" aria-current="page">Available Credits</a>' in page  # in the navigation

    active = section(page, "active-credits")
    assert rows(active) == [
        "This month's commitment 2027-02, month 2 of 12 · details USD 1,300.00 of USD 1,000.00 spent "
        "(over the commitment) USD 0.00",
        "Monthly commitment (term) 2027-01-01 to 2027-12-31 USD 1,000.00 of USD 12,000.00 (8.33%) USD 11,000.00",
        "Banked commitment 2027-01-01 to 2027-12-31 USD 0.00 of USD 400.00 (0%) USD 400.00",
        "Promotional credits 2027-01-01 to 2027-06-30 USD 100.00 of USD 500.00 (20%) USD 400.00"]
    # Used of total as a progress bar, labelled with both amounts (the month's bar is full: usage is over it).
    bars = re.findall(r'<progress max="([^"]+)" value="([^"]+)" aria-label="([^"]+)"', active)
    assert bars == [("1000", "1000", "Monthly commitment 2027-02: USD 1,300.00 spent of USD 1,000.00"),
                    ("12000", "1000", "Monthly commitment (term): USD 1,000.00 used of USD 12,000.00"),
                    ("400", "0", "Banked commitment: USD 0.00 used of USD 400.00"),
                    ("500", "100", "Promotional credits: USD 100.00 used of USD 500.00")]

    upcoming = section(page, "upcoming-credits")
    assert rows(upcoming) == ["Upcoming: not started yet",
                              "Prepaid credits 2027-03-01 to 2028-02-29 USD 0.00 of USD 2,000.00 (0%) USD 2,000.00"]
    assert 'class="upcoming"' in upcoming  # displayed in gray
    history = section(page, "history-table")
    assert rows(history)[1:] == ["Startup 2026-12-01 to 2027-01-31 USD 50.00 of USD 50.00 (100%) USD 0.00"]

    elastic = section(page, "elastic-billing")
    assert "Elastic Billing not enabled" in elastic and "Elastic Billing not active" in elastic

    commitment = section(page, "commitment")
    assert "Monthly commitment: 2027-02" in commitment
    assert 'id="commitment-usage">USD 1,300.00<' in commitment
    assert 'id="commitment-banked">USD 400.00<' in commitment
    # D1's February: the $300 overage is covered from the bank, so the month bills its $1,000 commitment.
    explained = " ".join(re.sub(r"<[^>]+>", " ", section(page, "commitment-explanation").split(">", 1)[1]).split())
    assert explained == ("Usage is USD 300.00 over the commitment. If the month closed "
                         "today it would bill USD 1,000.00 , USD 300.00 of the overage covered from the bank; the bank "
                         "would then hold USD 100.00.")


async def test_elastic_billing_enabled_is_not_active_until_credits_run_out(browser_client, seeded):
    db = seeded.db
    add_subscription(db, "acme", "elastic")
    add_lines(db, "acme", ("promotional", "100", "40", date(2027, 1, 1), date(2027, 12, 31)))
    await sign_in(browser_client, db)
    page = (await browser_client.get("/orgs/acme/credits")).text
    elastic = section(page, "elastic-billing")
    assert "Elastic Billing enabled" in elastic and "Elastic Billing not active" in elastic
    assert "when they run out the organization moves to Elastic Billing automatically" in page
    # The Elastic subscription is infinite credit at the bottom; its Used is the usage since the term began
    # (January's cloud invoice and February's running total).
    usage = seeded.cloud.usage + seeded.pending.usage
    assert rows(section(page, "active-credits"))[-1] == (
        f"Elastic Billing 2027-01-01 to 2027-12-31 USD {usage:,.2f} used ∞")
    assert 'aria-label="unlimited"' in page and "commitment-title" not in page

    with db.session() as s:  # the promotional line spent: the organization now pays as it goes
        line = s.exec(select(CreditLine)).one()
        line.used = line.amount
        s.add(line)
    page = (await browser_client.get("/orgs/acme/credits")).text
    elastic = section(page, "elastic-billing")
    assert "Elastic Billing enabled" in elastic and "Elastic Billing active" in elastic
    assert "Usage is charged as you go (Elastic Billing)" in page


async def test_the_credits_page_is_for_signed_in_members_of_that_organization(browser_client, seeded):
    add_lines(seeded.db, "globex", ("promotional", "777", "0", date(2027, 1, 1), date(2027, 12, 31)))
    anonymous = await browser_client.get("/orgs/acme/credits")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/orgs/acme/signin?next=%2Forgs%2Facme%2Fcredits"
    await sign_in(browser_client, seeded.db)
    other = await browser_client.get("/orgs/globex/credits")
    assert other.status_code == 303 and "/orgs/globex/signin" in other.headers["location"]
    own = (await browser_client.get("/orgs/acme/credits")).text
    assert "777" not in own and "No active credits." in own and "No expired credits." in own


async def test_view_details_of_a_commitment_invoice_opens_the_commitment_on_the_credits_page(browser_client, seeded):
    db = seeded.db
    invoice = add_invoice(db, "acme", "2026-12", "INVOICED", line_rows(4, "2026-12"), tax_rate=Decimal(0))
    with db.session() as s:
        row = s.get(Invoice, invoice.id)
        row.billing_mode, row.invoiced = "subscription", row.total
        s.add(row)
    await sign_in(browser_client, db)
    page = (await browser_client.get(f"/orgs/acme/invoices/{invoice.number}")).text
    assert "monthly commitment" in section(page, "payment-details")
    assert '<a href="/orgs/acme/credits#commitment" class="action">VIEW DETAILS</a>' in page
    card = (await browser_client.get(f"/orgs/acme/invoices/{seeded.cloud.number}")).text
    assert '<a href="#usage-details" class="action">VIEW DETAILS</a>' in card  # a card invoice: its own usage
