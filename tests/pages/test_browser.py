"""The pages in a real browser (Debian's Chromium driven by Playwright) against the app served by uvicorn, with a
real worker on the time-skipping Temporal server: sign in with the e-mailed link, filter the list, open an invoice
and see both charts, replace a card with a bad number and read the error, replace it and RETRY the declined
payment until it is PAID, read Available Credits, and re-authenticate an SCA card to collect its failed payment
(SPEC G1-G5, A5, F1-F3, D3; test_credits_browser.py has the credits page's own browser test).
Screenshots of every page, at 1400 px and 390 px wide, go to tests/artifacts/."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email import message_from_bytes

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlmodel import SQLModel

from api.app import create_app
from api.pages import PagesSettings
from billing.cards import CardIn
from billing.profiles import BillingProfileIn, OrganizationIn
from services.client import BillingClient, UsageIn
from starter.idle import wait_until_at_rest
from starter.processes import free_port
from store.db import Database
from store.gateway import SandboxGateway
from tests.factories import DECLINED, SCA, VISA
from tests.pages.conftest import ARTIFACTS
from worker import build_worker

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
JAN_1 = datetime(2027, 1, 1, tzinfo=timezone.utc)
pytestmark = pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is installed by .ci/run")


def _org(org_id: str, number: str, country: str, state: str, city: str) -> OrganizationIn:
    return OrganizationIn(id=org_id, name=org_id.title(), owners=[f"owner@{org_id}.test"],
                          billing_admins=[f"billing@{org_id}.test"],
                          billing_profile=BillingProfileIn(country=country, state=state, city=city,
                                                           address_line1="1 Main St", postal_code="10001",
                                                           company_name=f"{org_id.title()} Ltd"),
                          payment_method=CardIn(type="card", number=number, exp="12/30", cvc="123", name="Ada"))


def _usage(start: date, end: date) -> list[UsageIn]:
    rows = [("storefront", "Cluster0", "Atlas Dedicated", "ATLAS_AWS_INSTANCE_M30", "744", "hours", "0.54"),
            ("storefront", "Cluster0", "Atlas Backup", "ATLAS_AWS_BACKUP_SNAPSHOT_STORAGE", "85.25", "GB-months",
             "0.14"),
            ("analytics", "Reporting", "Atlas Dedicated", "ATLAS_AWS_INSTANCE_M10", "744", "hours", "0.08"),
            ("analytics", "Reporting", "Atlas Data Transfer", "ATLAS_AWS_DATA_TRANSFER_INTERNET", "120.5", "GB",
             "0.09")]
    return [UsageIn(project=p, deployment=d, service=s, sku=k, start_date=start, end_date=end, quantity=q, unit=u,
                    unit_price=price) for p, d, s, k, q, u, price in rows]


@dataclass
class Live:
    url: str
    browser: Browser
    inbox: object
    db: Database
    invoices: dict[str, str]  # org -> its December cloud invoice


@pytest_asyncio.fixture
async def live(time_skipping_env, postgres, smtp_server, task_queue) -> AsyncIterator[Live]:
    env = time_skipping_env
    inbox, smtp = smtp_server
    db = Database(postgres.create())
    SQLModel.metadata.create_all(db.engine)
    gateway = SandboxGateway(db)
    billing = BillingClient(env.client, db, gateway, clock=env.get_current_time, task_queue=task_queue)
    port = free_port()
    app = create_app(billing, pages_settings=PagesSettings(secret=b"browser-test-secret-32-bytes-long!", smtp=smtp))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    server.install_signal_handlers = lambda: None
    async with build_worker(env.client, db, gateway, smtp, task_queue=task_queue):
        with env.auto_time_skipping_disabled():
            await billing.create_organization(_org("acme", DECLINED, "US", "NY", "New York"))
            await billing.create_organization(_org("eurocorp", SCA, "DE", "Berlin", "Berlin"))
            for org in ("acme", "eurocorp"):
                await billing.record_usage(org, _usage(date(2026, 12, 1), date(2026, 12, 31)))
            await env.sleep(JAN_1 - await env.get_current_time())
            settled = {org: await billing.settle(org, "2026-12") for org in ("acme", "eurocorp")}
            await wait_until_at_rest(env.client, [s.payment_workflow_id for s in settled.values()])
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
                try:
                    yield Live(url=f"http://127.0.0.1:{port}", browser=browser, inbox=inbox, db=db,
                               invoices={org: s.invoice.number for org, s in settled.items()})
                finally:
                    await browser.close()
                    server.should_exit = True
                    await serving
    db.dispose()


async def shoot(page: Page, name: str) -> None:
    """A full-page screenshot at 1400 px, then at 390 px (a phone), under tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1400, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size({"width": 1400, "height": 900})


async def sign_in_by_email(live: Live, page: Page, org: str) -> None:
    await page.goto(f"{live.url}/orgs/{org}/invoices")
    await expect(page).to_have_url(re.compile(rf"/orgs/{org}/signin"))
    await shoot(page, "signin")
    before = len(live.inbox.messages)
    await page.get_by_label("Your e-mail address").fill(f"owner@{org}.test")
    await page.get_by_role("button", name="E-mail me a sign-in link").click()
    await expect(page.get_by_role("status")).to_contain_text("a sign-in link is on its way")
    for _ in range(100):
        if len(live.inbox.messages) > before:
            break
        await asyncio.sleep(0.05)
    mail = message_from_bytes(live.inbox.messages[-1].content)
    assert mail["To"] == f"owner@{org}.test"
    link = re.search(r"http://\S+/signin/sl_[\w-]+", mail.get_payload(decode=True).decode()).group(0)
    await page.goto(link)  # the link's page submits its one-time form by itself
    await expect(page).to_have_url(f"{live.url}/orgs/{org}/invoices")
    await expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()


async def test_a_declined_payment_is_retried_from_its_invoice_after_the_card_is_replaced(live):
    number = live.invoices["acme"]
    page = await live.browser.new_page(viewport={"width": 1400, "height": 900})
    await sign_in_by_email(live, page, "acme")
    await shoot(page, "invoices")

    # G1: filter by status; Pending keeps the unpaid (FAILED) invoice, Successful has none yet.
    await page.get_by_label("Status").select_option("pending")
    await page.get_by_role("button", name="Apply").click()
    await expect(page).to_have_url(re.compile(r"status=pending"))
    await expect(page.get_by_role("cell", name=number, exact=True)).to_be_visible()
    await page.get_by_label("Status").select_option("successful")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.get_by_text("No invoices match these filters.")).to_be_visible()
    await page.get_by_label("From").fill("2026-12-01")
    await page.get_by_label("Status").select_option("")
    await page.get_by_role("button", name="Apply").click()
    await shoot(page, "invoices-filtered")

    # G2: open the invoice; both charts are drawn.
    await page.get_by_role("row", name=re.compile(number)).get_by_role("link").first.click()
    await expect(page.get_by_role("heading", name=re.compile(f"Invoice {number}"))).to_be_visible()
    for chart in ("#chart-by-service", "#chart-by-deployment"):
        await expect(page.locator(chart)).to_be_visible()
        assert await page.locator(chart).evaluate("img => img.complete && img.naturalWidth > 100")
    assert "Atlas Dedicated" in await page.locator("#chart-by-service").get_attribute("alt")
    await expect(page.locator("#invoice-status")).to_have_text("FAILED")
    await expect(page.get_by_role("button", name="RETRY")).to_be_visible()
    await shoot(page, "invoice-failed")

    # A5: a bad card number is refused, naming the field; then a good card replaces the declined one.
    await page.get_by_role("link", name="Payment method", exact=True).click()
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Card number").fill("4242 4242 4242 4241")
    await page.get_by_label("Expiration date (MM/YY)").fill("12/30")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator("#number-error")).to_contain_text("card number is not valid")
    await expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    await shoot(page, "payment-method-error")
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Card number").fill(VISA)
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator("#update-result")).to_be_visible()
    await expect(page.locator("#method-on-file")).to_have_text(re.compile(r"Visa •••• 4242"))
    await shoot(page, "payment-method")

    # F3: RETRY from the invoice signals the failed payment; the page then shows it PAID.
    await page.goto(f"{live.url}/orgs/acme/invoices/{number}")
    await page.get_by_role("button", name="RETRY").click()
    await expect(page.get_by_role("status")).to_contain_text("Retry requested")
    for _ in range(60):
        if (await page.locator("#invoice-status").inner_text()) == "PAID":
            break
        await asyncio.sleep(0.5)
        await page.reload()
    await expect(page.locator("#invoice-status")).to_have_text("PAID")
    await expect(page.locator("#payment-details")).to_contain_text("PAID")
    await expect(page.get_by_role("button", name="RETRY")).to_have_count(0)
    await shoot(page, "invoice-paid")

    await page.get_by_role("link", name="Billing profile", exact=True).click()
    await expect(page.get_by_label("Address line 1")).to_have_value("1 Main St")
    await shoot(page, "billing-profile")

    # D3: no subscription, no credits: Elastic Billing is how acme pays, enabled and active.
    await page.get_by_role("link", name="Available Credits", exact=True).click()
    await expect(page.locator("#elastic-enabled")).to_have_text("Elastic Billing enabled")
    await expect(page.locator("#elastic-active")).to_have_text("Elastic Billing active")
    await shoot(page, "credits-elastic")


async def test_reauthenticating_an_sca_card_collects_the_failed_payment(live):
    number = live.invoices["eurocorp"]
    page = await live.browser.new_page(viewport={"width": 1400, "height": 900})
    await sign_in_by_email(live, page, "eurocorp")
    await page.goto(f"{live.url}/orgs/eurocorp/invoices/{number}")
    await expect(page.locator("#payment-details")).to_contain_text("authentication_required")
    await page.get_by_role("link", name="Payment method", exact=True).click()
    await page.get_by_label("Name on card").fill("Hans Meier")
    await page.get_by_label("Card number").fill(SCA)
    await page.get_by_label("Expiration date (MM/YY)").fill("12/30")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_label(re.compile("Authenticate this card")).check()
    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator("#update-result")).to_contain_text("The card is authenticated")
    await expect(page.locator("#update-result")).to_contain_text("1 collected")
    await shoot(page, "payment-method-reauthenticated")
    await page.goto(f"{live.url}/orgs/eurocorp/invoices/{number}")
    await expect(page.locator("#invoice-status")).to_have_text("PAID")
