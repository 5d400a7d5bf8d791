"""Available Credits in a real browser (Debian's Chromium driven by Playwright) against the app served by uvicorn on
PostgreSQL: the page is in the navigation, each active line's used/total is a progress bar with an accessible name,
upcoming lines and History are listed, the Elastic Billing state and the commitment month are shown, a commitment
invoice's VIEW DETAILS lands on the commitment, and the page reads at 1400 px and 390 px wide (SPEC D3, D1, G5).
Screenshots go to tests/artifacts/ (credits-1400.png, credits-390.png)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Page, async_playwright, expect
from sqlmodel import SQLModel

from services import signin
from starter.processes import free_port
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import Invoice
from tests.factories import org_with_method
from tests.pages.conftest import add_invoice, line_rows, pages_app
from tests.pages.test_browser import CHROMIUM, pytestmark, shoot  # noqa: F401 (skipped without chromium)
from tests.pages.test_credits_http import add_lines, add_subscription, set_cycle_usage


@pytest_asyncio.fixture
async def credits_site(postgres) -> AsyncIterator[tuple[str, Database, str]]:
    """acme on D1's monthly commitment (February: $1,300 spent of $1,000, $400 banked), with an active, an upcoming
    and an expired credit line, and December's commitment invoice; the app on a free port."""
    db = Database(postgres.create())
    SQLModel.metadata.create_all(db.engine)
    org_with_method(db, SandboxGateway(db), org_id="acme", created=datetime(2026, 10, 1, tzinfo=timezone.utc))
    add_subscription(db, "acme", "monthly_commitment", bank=Decimal("400"), banked_total=Decimal("400"),
                     cumulative_usage=Decimal("600"), cumulative_billed=Decimal("1000"), months_billed=1,
                     last_period="2027-01")
    add_lines(db, "acme", ("promotional", "500", "100", date(2027, 1, 1), date(2027, 6, 30)),
              ("prepaid", "2000", "0", date(2027, 3, 1), date(2028, 2, 29)),
              ("startup", "50", "50", date(2026, 12, 1), date(2027, 1, 31)))
    cycle = add_invoice(db, "acme", "2027-02", "PENDING", line_rows(3, "2027-02"), tax_rate=Decimal(0))
    set_cycle_usage(db, cycle, "1300")
    invoiced = add_invoice(db, "acme", "2026-12", "INVOICED", line_rows(4, "2026-12"), tax_rate=Decimal(0))
    with db.session() as s:
        row = s.get(Invoice, invoiced.id)
        row.billing_mode, row.invoiced = "subscription", row.total
        s.add(row)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(pages_app(db), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", db, invoiced.number
    finally:
        server.should_exit = True
        await serving
        db.dispose()


async def signed_in_page(url: str, db: Database) -> tuple[Page, object, object]:
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    token = signin.issue_link_token(db, "acme", "owner@acme.test", datetime.now(timezone.utc))
    await page.goto(f"{url}/orgs/acme/signin/{token}")  # the link's page submits its one-time form by itself
    await expect(page).to_have_url(f"{url}/orgs/acme/invoices")
    return page, browser, playwright


async def test_the_credits_page_shows_progress_bars_and_reads_at_both_widths(credits_site):
    url, db, invoiced = credits_site
    page, browser, playwright = await signed_in_page(url, db)
    try:
        await page.get_by_role("link", name="Available Credits", exact=True).click()
        await expect(page).to_have_url(f"{url}/orgs/acme/credits")
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Available Credits")
        await expect(page.get_by_role("link", name="Available Credits", exact=True)).to_have_attribute(
            "aria-current", "page")

        # D3: an active line's used/total is a progress bar, named with both amounts.
        promo = page.get_by_role("progressbar", name=re.compile(r"^Promotional credits: USD 100\.00 used of "
                                                                r"USD 500\.00$"))
        await expect(promo).to_be_visible()
        assert await promo.evaluate("bar => bar.position") == pytest.approx(0.2)
        box = await promo.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] >= 10
        month = page.get_by_role("progressbar", name=re.compile(r"^Monthly commitment 2027-02: USD 1,300\.00 spent"))
        assert await month.evaluate("bar => bar.position") == 1  # over the commitment: full
        await expect(page.get_by_role("progressbar")).to_have_count(4)  # the month, the term, the bank, the promotion

        await expect(page.locator("#upcoming-credits")).to_contain_text("Prepaid credits")
        await expect(page.locator("#upcoming-credits progress")).to_have_count(0)  # not started: no usage to show
        await expect(page.locator("#history-table")).to_contain_text("2026-12-01 to 2027-01-31")
        await expect(page.locator("#elastic-enabled")).to_have_text("Elastic Billing not enabled")
        await expect(page.locator("#elastic-active")).to_have_text("Elastic Billing not active")
        await expect(page.locator("#commitment-banked")).to_have_text("USD 400.00")
        await expect(page.locator("#commitment-explanation")).to_contain_text("covered from the bank")

        await shoot(page, "credits")
        await page.set_viewport_size({"width": 390, "height": 900})
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways
        assert (await promo.bounding_box())["width"] > 100  # the bar still reads on a phone
        await page.set_viewport_size({"width": 1400, "height": 900})

        # G2: VIEW DETAILS on a commitment invoice opens the commitment's month on this page.
        await page.goto(f"{url}/orgs/acme/invoices/{invoiced}")
        await page.get_by_role("link", name="VIEW DETAILS").click()
        await expect(page).to_have_url(f"{url}/orgs/acme/credits#commitment")
        await expect(page.get_by_role("heading", name="Monthly commitment: 2027-02")).to_be_in_viewport()
    finally:
        await browser.close()
        await playwright.stop()
