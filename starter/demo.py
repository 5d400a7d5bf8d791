"""The demo `make run` seeds: a paying organization, one whose card is declined and one paying with an India-issued
card (settled by the issuer's webhook), settled for last month."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from sqlmodel import select

from billing.cards import CardIn
from billing.profiles import BillingProfileIn, OrganizationIn
from store.tables import FxRate, UsageLine
from services.client import BillingClient, BillingError, UsageIn
from starter.idle import wait_until_at_rest
from contracts.flows import settlement_workflow_id

DEMO_ORGS = ("demo", "demo-declined", "demo-india")
# The demo's USD -> INR rate, in force from the start of the demo's month (M2, E3: India charges are in INR).
DEMO_INR_RATE = Decimal("84.50")
REST_TIMEOUT = timedelta(seconds=60)


def previous_month(now: datetime) -> tuple[date, date]:
    """The first day of the previous calendar month and of the current one."""
    this_month = now.date().replace(day=1)
    return (this_month - timedelta(days=1)).replace(day=1), this_month


def demo_organizations(now: datetime) -> list[OrganizationIn]:
    exp = f"12/{(now.year + 3) % 100:02d}"
    return [
        OrganizationIn(
            id="demo", name="Demo Analytics Ltd", owners=["owner@demo.test"], billing_admins=["billing@demo.test"],
            billing_profile=BillingProfileIn(
                country="IE", address_line1="1 Grand Canal Square", city="Dublin", state="Dublin",
                postal_code="D02 P820", company_name="Demo Analytics Ltd", tax_id="IE6388047V"),
            payment_method=CardIn(type="card", number="4242424242424242", exp=exp, cvc="123", name="Demo Owner"),
        ),
        OrganizationIn(
            id="demo-declined", name="Declined Demo Inc", owners=["owner@demo-declined.test"],
            billing_admins=["billing@demo-declined.test"],
            billing_profile=BillingProfileIn(
                country="US", address_line1="1633 Broadway", city="New York", state="NY", postal_code="10019",
                company_name="Declined Demo Inc"),
            payment_method=CardIn(type="card", number="4000000000000002", exp=exp, cvc="123",
                                  name="Declined Owner"),
        ),
        # E1-E6: an India-issued card: a mandate, the charge in INR PROCESSING with the issuer, then PAID when the
        # sandbox gateway's signed webhook reaches POST /v1/webhooks/gateway (I5).
        OrganizationIn(
            id="demo-india", name="Demo India Pvt Ltd", owners=["owner@demo-india.test"],
            billing_profile=BillingProfileIn(
                country="IN", address_line1="1 MG Road", city="Bengaluru", state="Karnataka", postal_code="560001",
                company_name="Demo India Pvt Ltd"),
            payment_method=CardIn(type="card", number="4000003560000123", exp=exp, cvc="123", name="India Owner"),
        ),
    ]


def demo_usage(org_id: str, start: date, end: date) -> list[UsageIn]:
    hours = str((end - start).days * 24)
    lines = {
        "demo": [
            ("storefront", "Cluster0", "Atlas Dedicated", "ATLAS_AWS_INSTANCE_M30", hours, "hours", "0.54"),
            ("storefront", "Cluster0", "Atlas Backup", "ATLAS_AWS_BACKUP_SNAPSHOT_STORAGE", "85.25", "GB-months",
             "0.14"),
            ("storefront", "Cluster0", "Atlas Data Transfer", "ATLAS_AWS_DATA_TRANSFER_INTERNET", "120.5", "GB",
             "0.09"),
        ],
        "demo-declined": [
            ("prototype", "Sandbox", "Atlas Dedicated", "ATLAS_AWS_INSTANCE_M10", hours, "hours", "0.08"),
        ],
        "demo-india": [
            ("checkout", "Cluster1", "Atlas Dedicated", "ATLAS_AWS_INSTANCE_M10", hours, "hours", "0.04"),
        ],
    }[org_id]
    return [UsageIn(project=project, deployment=deployment, service=service, sku=sku, start_date=start,
                    end_date=end, quantity=quantity, unit=unit, unit_price=unit_price)
            for project, deployment, service, sku, quantity, unit, unit_price in lines]


def _has_rate(billing: BillingClient, currency: str) -> bool:
    with billing.db.session() as s:
        return s.exec(select(FxRate.id).where(FxRate.currency == currency)).first() is not None


def _has_usage(billing: BillingClient, org_id: str, period: str) -> bool:
    with billing.db.session() as s:
        row = s.exec(select(UsageLine.id).where(UsageLine.org_id == org_id, UsageLine.period == period)).first()
    return row is not None


async def seed_demo(billing: BillingClient, now: datetime) -> list[str]:
    """Create the demo organizations, record last month's usage and settle it; safe to run on every start."""
    start, end = previous_month(now)
    period = f"{start.year:04d}-{start.month:02d}"
    if not await asyncio.to_thread(_has_rate, billing, "INR"):
        await billing.record_fx_rate("INR", DEMO_INR_RATE, datetime.combine(start, time(0), tzinfo=timezone.utc))
    for org in demo_organizations(now):
        try:
            await billing.create_organization(org)
        except BillingError as err:
            if "already exists" not in str(err):
                raise
        # Checked rather than tied to creation, so a start interrupted between the two still records usage.
        if not await asyncio.to_thread(_has_usage, billing, org.id, period):
            await billing.record_usage(org.id, demo_usage(org.id, start, end))
    results = await asyncio.gather(*(billing.settle(org_id, period) for org_id in DEMO_ORGS))
    payments = [r.payment_workflow_id for r in results if r.payment_workflow_id]
    try:
        # At rest: done, or waiting for a retry, so their e-mails have gone out.
        await wait_until_at_rest(billing.temporal, payments, REST_TIMEOUT)
    except TimeoutError as err:
        seconds = REST_TIMEOUT.total_seconds()
        raise RuntimeError(f"the demo's payment workflows {payments} did not come to rest within {seconds:.0f} s; "
                           f"an activity keeps failing (is the SMTP server reachable?): {err}") from None
    return [settlement_workflow_id(org_id, period) for org_id in DEMO_ORGS] + payments
